"""Benchmark: capture ingest through the API against bare S3 PUTs of the same bytes, same run.

- figure: captures per second through ``POST /v1/contracts/{id}/captures`` (multipart, one 1920x1080
  WebP per capture, quality 60) from 8 concurrent uploaders, each with its own keep-alive connection:
  authentication, image validation (a full decode), the thumbnail, two object PUTs and the row;
- floor: PUTs of the same bytes with the same concurrency through the ``minio`` client to the same S3
  server, nothing else.
- where the CPU goes: per capture, the CPU of the API process, the S3 server and this process (the
  uploaders) on each side, so the gap can be read against the machine's cores.

The images are realistic screens (windows, lines of text, a picture or two), 100-300 KB each. The two
sides alternate for a few rounds and the medians are reported, with p50/p95 latency of each, and the
CPU the API's image work (validating decode + thumbnail) takes per capture. It starts its own stack
(Temporal, PostgreSQL, the local S3 server, API, worker) on free ports.

Target: ratio >= 0.6. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
from PIL import Image, ImageDraw, ImageFont

from bench.workview import BenchStack, percentile
from store.images import check_image, thumbnail
from store.objects import ObjectStore

REPO = Path(__file__).resolve().parents[1]

WIDTH, HEIGHT = 1920, 1080
UPLOADERS = 8
WORDS = (
    "the invoice export parser schema migration def return class import self value error test build deploy "
    "commit merge branch review docs api client provider week slot memo timesheet ledger async await yield "
    "SELECT FROM WHERE JOIN const let function props state render component styles margin padding"
).split()


def screen(seed: int) -> bytes:
    """A desktop: a taskbar, overlapping windows full of text lines, sometimes a photo-like picture."""
    rng = random.Random(seed)
    dark = rng.random() < 0.4
    image = Image.new("RGB", (WIDTH, HEIGHT), (32, 33, 40) if dark else (236, 238, 241))
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    draw.rectangle((0, HEIGHT - 40, WIDTH, HEIGHT), fill=(20, 22, 28))
    for _ in range(rng.randint(3, 5)):
        x0, y0 = rng.randint(0, WIDTH // 2), rng.randint(0, HEIGHT // 3)
        x1, y1 = min(WIDTH, x0 + rng.randint(800, 1400)), min(HEIGHT - 40, y0 + rng.randint(450, 850))
        light = rng.random() < 0.6
        background = (255, 255, 255) if light else (40, 42, 54)
        ink = (35, 35, 40) if light else (215, 218, 225)
        draw.rectangle((x0, y0, x1, y1), fill=background, outline=(120, 120, 120))
        draw.rectangle((x0, y0, x1, y0 + 28), fill=(rng.randint(50, 90),) * 3)
        y = y0 + 34
        while y < y1 - 16:
            x = x0 + 10 + rng.randint(0, 5) * 16
            line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 18)))
            tint = tuple(max(0, min(255, c + rng.randint(-60, 60))) for c in ink)
            draw.text((x, y), line, fill=tint, font=font)
            y += 16
        if rng.random() < 0.6:
            size = (rng.randint(200, 420), rng.randint(140, 300))
            picture = Image.effect_noise(size, rng.randint(30, 90)).convert("RGB")
            picture = Image.merge(
                "RGB",
                [
                    b.point(lambda v, k=k: (v * k) // 4)
                    for k, b in zip((4, 3, 2), picture.split(), strict=True)
                ],
            )
            image.paste(picture, (x0 + rng.randint(20, 300), y0 + rng.randint(60, 300)))
    out = io.BytesIO()
    image.save(out, "WEBP", quality=60)
    return out.getvalue()


def run_api(
    url: str, contract_id: str, token: str, images: list[bytes], per_uploader: int
) -> tuple[float, list[float]]:
    """(seconds for all, each request's latency)."""
    latencies: list[float] = []
    lock = threading.Lock()
    now = datetime.now(UTC)

    def uploader(index: int) -> None:
        rng = random.Random(index)
        mine: list[float] = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
            for n in range(per_uploader):
                meta = {
                    "capture_id": str(uuid.uuid4()),
                    "captured_at": (now - timedelta(seconds=rng.randint(60, 3000))).isoformat(),
                    "memo": f"bench uploader {index} capture {n}",
                    "keyboard_events": rng.randint(0, 500),
                    "mouse_events": rng.randint(0, 300),
                }
                data = images[(index * per_uploader + n) % len(images)]
                began = time.perf_counter()
                response = http.post(
                    f"/v1/contracts/{contract_id}/captures",
                    data={"meta": json.dumps(meta)},
                    files=[("images", ("m0.webp", data, "image/webp"))],
                )
                mine.append(time.perf_counter() - began)
                if response.status_code != 201:
                    raise SystemExit(f"upload failed: {response.status_code} {response.text}")
        with lock:
            latencies.extend(mine)

    began = time.perf_counter()
    with ThreadPoolExecutor(UPLOADERS) as pool:
        list(pool.map(uploader, range(UPLOADERS)))
    return time.perf_counter() - began, latencies


def run_floor(
    store: ObjectStore, images: list[bytes], per_uploader: int, round_no: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()

    def uploader(index: int) -> None:
        mine: list[float] = []
        for n in range(per_uploader):
            data = images[(index * per_uploader + n) % len(images)]
            began = time.perf_counter()
            store.put(f"bench-floor/{round_no}/{index}/{n}-{uuid.uuid4().hex}.webp", data, "image/webp")
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    began = time.perf_counter()
    with ThreadPoolExecutor(UPLOADERS) as pool:
        list(pool.map(uploader, range(UPLOADERS)))
    return time.perf_counter() - began, latencies


class CpuMeter:
    """CPU seconds of the API process, the S3 server and this process (the uploaders), per side: where
    each capture's CPU goes on a machine where every part shares the same cores."""

    def __init__(self, api_pid: int | None, s3_pid: int | None) -> None:
        self.processes = {
            "API": psutil.Process(api_pid) if api_pid else None,
            "S3 server": psutil.Process(s3_pid) if s3_pid else None,
            "uploaders (this process)": psutil.Process(),
        }
        self.spent: dict[str, defaultdict[str, float]] = {
            "floor": defaultdict(float),
            "api": defaultdict(float),
        }

    def now(self) -> dict[str, float]:
        out = {}
        for name, process in self.processes.items():
            if process is not None:
                times = process.cpu_times()
                out[name] = times.user + times.system
        return out

    def add(self, side: str, before: dict[str, float]) -> None:
        for name, seconds in self.now().items():
            self.spent[side][name] += seconds - before[name]

    def report(self, side: str, captures: int) -> dict[str, float]:
        return {name: round(s / captures * 1000, 2) for name, s in self.spent[side].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--per-uploader", type=int, default=30, help="captures per uploader per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=16, help="distinct screens to cycle through")
    args = parser.parse_args()

    print(f"making {args.images} screens of {WIDTH}x{HEIGHT} ...", flush=True)
    images = [screen(seed) for seed in range(args.images)]
    sizes = sorted(len(i) for i in images)
    print(
        f"WebP q60: {sizes[0] // 1024}-{sizes[-1] // 1024} KB, median {statistics.median(sizes) / 1024:.0f} KB"
    )

    # what the API does to each image before storing it, on one core: the validating decode and the
    # thumbnail (explains most of the gap to the floor)
    began = time.process_time()
    for data in images:
        thumbnail(check_image(data, index=0, max_bytes=8 << 20, max_pixels=40_000_000))
    image_cpu_ms = (time.process_time() - began) / len(images) * 1000
    print(f"server-side image work (validate + thumbnail): {image_cpu_ms:.0f} ms CPU per capture")

    with BenchStack() as bench:
        party = bench.party(backdate=timedelta(days=1))
        store = ObjectStore.from_settings(bench.running.settings)
        # warm both paths (connections, imports, the first decode) outside the measurement
        run_api(bench.running.api_url, party.contract_id, party.provider_token, images[:2], 2)
        run_floor(store, images[:2], 2, -1)
        stack = bench.stack
        meter = CpuMeter(
            stack.api.process.pid if stack.api and stack.api.process else None,
            stack.s3.process.pid if stack.s3 and stack.s3.process else None,
        )
        api_rates: list[float] = []
        floor_rates: list[float] = []
        api_lat: list[float] = []
        floor_lat: list[float] = []
        total = UPLOADERS * args.per_uploader
        for round_no in range(args.rounds):
            before = meter.now()
            seconds, lat = run_floor(store, images, args.per_uploader, round_no)
            meter.add("floor", before)
            floor_rates.append(total / seconds)
            floor_lat += lat
            before = meter.now()
            seconds, lat = run_api(
                bench.running.api_url, party.contract_id, party.provider_token, images, args.per_uploader
            )
            meter.add("api", before)
            api_rates.append(total / seconds)
            api_lat += lat
            print(
                f"round {round_no + 1}: floor {floor_rates[-1]:.1f}/s, API {api_rates[-1]:.1f}/s", flush=True
            )

    figure, floor = statistics.median(api_rates), statistics.median(floor_rates)
    ms = 1000.0
    print(f"floor (bare S3 PUT, {UPLOADERS} concurrent): {floor:.1f} captures/s, "
          f"p50 {percentile(floor_lat, 50) * ms:.1f} ms, p95 {percentile(floor_lat, 95) * ms:.1f} ms")  # fmt: skip
    print(f"API ingest ({UPLOADERS} concurrent uploaders): {figure:.1f} captures/s, "
          f"p50 {percentile(api_lat, 50) * ms:.1f} ms, p95 {percentile(api_lat, 95) * ms:.1f} ms")  # fmt: skip
    captures = total * args.rounds
    cpu_floor, cpu_api = meter.report("floor", captures), meter.report("api", captures)
    for side, cpu in (("floor", cpu_floor), ("API", cpu_api)):
        parts = ", ".join(f"{name} {ms:.1f}" for name, ms in cpu.items())
        print(f"CPU per capture, {side}: {sum(cpu.values()):.1f} ms ({parts})")
    print(f"ratio {figure / floor:.3f} (target >= 0.6)")
    print(
        json.dumps(
            {
                "bench": "ingest",
                "figure": round(figure, 2),
                "unit": "captures/s",
                "floor": round(floor, 2),
                "ratio": round(figure / floor, 3),
                "target_ratio": 0.6,
                "uploaders": UPLOADERS,
                "captures": total * args.rounds,
                "api_p50_ms": round(percentile(api_lat, 50) * ms, 1),
                "api_p95_ms": round(percentile(api_lat, 95) * ms, 1),
                "floor_p50_ms": round(percentile(floor_lat, 50) * ms, 1),
                "floor_p95_ms": round(percentile(floor_lat, 95) * ms, 1),
                "image_kb_median": round(statistics.median(sizes) / 1024),
                "image_cpu_ms": round(image_cpu_ms, 1),
                "cpu_ms_per_capture": {"floor": cpu_floor, "api": cpu_api},
            }
        )
    )


if __name__ == "__main__":
    main()
