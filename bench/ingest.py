"""Benchmark: capture ingest through the API against a floor that does the same validating work, same run.

- figure: captures per second through ``POST /v1/contracts/{id}/captures`` (multipart, one 1920x1080
  WebP per capture, quality 60, as the agent sends it) from 8 concurrent uploaders, each with its own
  keep-alive connection: authentication, image validation (a full decode), the thumbnail, two object
  PUTs and the row;
- floor (validating): per capture, with no web framework and no ORM, exactly the work the design
  requires, from 8 threads of a process of its own (started in its own session, as the API process is):
  one Pillow/libwebp decode of the image and the thumbnail the
  API makes (``store.images``, the same functions), its sha256, the PUT of the image and of the thumbnail
  through the ``minio`` client to the same S3 server, and one INSERT of the capture row through psycopg
  into the same database. The ratio is to this floor: it measures what the request path adds;
- bare PUT (information, the old floor): PUTs of the same bytes through the ``minio`` client, nothing else;
- where the CPU goes: per capture, the CPU of the API process(es), the S3 server, PostgreSQL (the
  backends serving this run's database), the floor's process and this one (the uploaders).

The images are realistic screens (windows, lines of text, a picture or two), 100-300 KB each. Each round
runs the bare PUTs, then the floor and the API in alternating order (floor first, then API first, ...);
the medians of the rounds are reported, with p50/p95 latency of each, every round's ratio (how noisy the
run was) and the ratio of CPU per capture, floor / API, over all processes (far steadier on a shared
machine). ``--api-processes 2`` starts a second API process on the same database and S3 server and
spreads the uploaders over both (scale-out).
It starts its own stack (Temporal, PostgreSQL, the local S3 server, API, worker) on free ports.

Target: ratio >= 0.6. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import psycopg
from PIL import Image, ImageDraw, ImageFont

from bench.workview import BenchStack, percentile
from deploy.stack import wait_for
from domain.calendar import slot_start, week_label, week_start
from store.images import check_image, thumbnail
from store.objects import ObjectStore
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[1]

WIDTH, HEIGHT = 1920, 1080
UPLOADERS = 8
MAX_BYTES, MAX_PIXELS = 8 << 20, 40_000_000
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


Timed = tuple[float, list[float]]  # (seconds for all, each capture's latency)


def in_threads(work: Callable[[int, int], None], per_uploader: int) -> Timed:
    """``work(uploader, n)`` for every capture, from UPLOADERS threads; the wall time and latencies."""
    latencies: list[float] = []
    lock = threading.Lock()

    def uploader(index: int) -> None:
        mine: list[float] = []
        for n in range(per_uploader):
            began = time.perf_counter()
            work(index, n)
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    began = time.perf_counter()
    with ThreadPoolExecutor(UPLOADERS) as pool:
        list(pool.map(uploader, range(UPLOADERS)))
    return time.perf_counter() - began, latencies


def captured_at(rng: random.Random, now: datetime) -> datetime:
    return now - timedelta(seconds=rng.randint(60, 3000))


class Uploads:
    """The agent's request, byte for byte (``meta`` as a plain form field, then one ``images`` part named
    like the agent's), sent over one keep-alive ``http.client`` connection per uploader: the load generator
    should cost this shared machine as little as it can, since the agents run elsewhere in production."""

    BOUNDARY = "workproof-bench-5f0c1a"

    def __init__(self, urls: list[str], contract_id: str, token: str) -> None:
        self.urls = urls
        self.path = f"/v1/contracts/{contract_id}/captures"
        self.token = token
        self.connections: dict[int, http.client.HTTPConnection] = {}  # one per uploader, kept across rounds

    def connection(self, index: int) -> http.client.HTTPConnection:
        conn = self.connections.get(index)
        if conn is None:
            url = urlsplit(self.urls[index % len(self.urls)])
            conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
            self.connections[index] = conn
        return conn

    def body(self, meta: dict, image: bytes) -> bytes:
        b = self.BOUNDARY
        return b"".join((
            f'--{b}\r\nContent-Disposition: form-data; name="meta"\r\n\r\n'.encode(), json.dumps(meta).encode(),
            f'\r\n--{b}\r\nContent-Disposition: form-data; name="images"; filename="monitor-1.webp"\r\n'
            f"Content-Type: image/webp\r\n\r\n".encode(), image, f"\r\n--{b}--\r\n".encode(),
        ))  # fmt: skip

    def send(self, index: int, meta: dict, image: bytes) -> None:
        body = self.body(meta, image)
        headers = {
            "Authorization": f"Bearer {self.token}", "Content-Type": f"multipart/form-data; boundary={self.BOUNDARY}",
            "User-Agent": "workproof-agent/0.1",
        }  # fmt: skip
        for attempt in (1, 2):
            conn = self.connection(index)
            try:
                conn.request("POST", self.path, body=body, headers=headers)
                response = conn.getresponse()
                answer = response.read()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # the server closed an idle keep-alive connection (between rounds): a new one, and the same
                # request again (idempotent by capture id)
                conn.close()
                del self.connections[index]
                if attempt == 2:
                    raise
        if response.status != 201:
            raise SystemExit(f"upload failed: {response.status} {answer[:300]!r}")

    def close(self) -> None:
        for conn in self.connections.values():
            conn.close()


def run_api(uploads: Uploads, images: list[bytes], per_uploader: int) -> Timed:
    now = datetime.now(UTC)
    rngs = [random.Random(index) for index in range(UPLOADERS)]

    def capture(index: int, n: int) -> None:
        rng = rngs[index]
        meta = {
            "capture_id": str(uuid.uuid4()), "captured_at": captured_at(rng, now).isoformat(),
            "memo": f"bench uploader {index} capture {n}", "kind": "screenshot",
            "keyboard_events": rng.randint(0, 500), "mouse_events": rng.randint(0, 300),
        }  # fmt: skip
        uploads.send(index, meta, images[(index * per_uploader + n) % len(images)])

    return in_threads(capture, per_uploader)


def run_bare_put(store: ObjectStore, images: list[bytes], per_uploader: int, round_no: int) -> Timed:
    def put(index: int, n: int) -> None:
        data = images[(index * per_uploader + n) % len(images)]
        store.put(f"bench-floor/{round_no}/{index}/{n}-{uuid.uuid4().hex}.webp", data, "image/webp")

    return in_threads(put, per_uploader)


INSERT = (
    "INSERT INTO captures (capture_id, contract_id, kind, captured_at, slot_start, week_start, memo, "
    "monitor_count, image_keys, thumbnail_key, sha256, widths, heights, bytes_total, keyboard_events, "
    "mouse_events, created_at) VALUES (%s, %s, 'screenshot', %s, %s, %s, %s, 1, %s::json, %s, %s::json, "
    "%s::json, %s::json, %s, %s, %s, now())"
)


class ValidatingFloor:
    """Per capture exactly what the design requires, and nothing else: decode and thumbnail (the API's own
    functions), the sha256, two PUTs through the ``minio`` client, one INSERT through psycopg."""

    def __init__(self, store: ObjectStore, database_url: str, contract_id: str) -> None:
        self.store = store
        self.contract_id = uuid.UUID(contract_id)
        dsn = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.connections = [psycopg.connect(dsn, autocommit=True) for _ in range(UPLOADERS)]

    def run(self, images: list[bytes], per_uploader: int) -> Timed:
        now = datetime.now(UTC)
        rngs = [random.Random(1000 + index) for index in range(UPLOADERS)]

        def capture(index: int, n: int) -> None:
            rng = rngs[index]
            data = images[(index * per_uploader + n) % len(images)]
            checked = check_image(
                data, index=0, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, make_thumbnail=True
            )
            thumb = thumbnail(checked)
            digest = hashlib.sha256(data).hexdigest()
            at = captured_at(rng, now)
            capture_id = uuid.uuid4()
            base = f"{self.contract_id}/{week_label(at)}/{capture_id}/{uuid.uuid4().hex[:16]}"
            self.store.put(f"{base}-m0.webp", data, checked.content_type)
            self.store.put(f"{base}-thumb.webp", thumb, "image/webp")
            self.connections[index].execute(INSERT, (
                capture_id, self.contract_id, at, slot_start(at), week_start(at), f"floor {index} {n}",
                json.dumps([f"{base}-m0.webp"]), f"{base}-thumb.webp", json.dumps([digest]),
                json.dumps([checked.width]), json.dumps([checked.height]), len(data),
                rng.randint(0, 500), rng.randint(0, 300),
            ))  # fmt: skip

        return in_threads(capture, per_uploader)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()


class FloorProcess:
    """The floor in a process of its own, started in its own session like the API process: on a machine
    shared with others, the kernel gives each session's group of processes an equal share of the cores
    (autogroup), so the floor's work must not share this process's group with the uploaders, nor get a
    smaller share than the API's. Commands on stdin (``run N``), answers on stdout, one JSON line each."""

    def __init__(self, bench: BenchStack, contract_id: str, images_file: Path) -> None:
        env = {**os.environ, **bench.stack.child_env()}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.ingest", "--floor-worker", contract_id, str(images_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, start_new_session=True, text=True,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def run(self, per_uploader: int) -> Timed:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(f"run {per_uploader}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise SystemExit("the floor process ended")
        seconds, latencies = json.loads(answer)
        return seconds, latencies

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def floor_worker(contract_id: str, images_file: Path) -> None:
    """The floor's process: the stack's settings from the environment, the images from ``images_file``."""
    from store.settings import Settings

    settings = Settings()
    images = json.loads(images_file.read_text())
    images = [bytes.fromhex(i) for i in images]
    assert settings.database_url
    floor = ValidatingFloor(ObjectStore.from_settings(settings), settings.database_url, contract_id)
    for line in sys.stdin:
        per_uploader = int(line.split()[1])
        seconds, latencies = floor.run(images, per_uploader)
        print(json.dumps([seconds, latencies]), flush=True)
    floor.close()


class CpuMeter:
    """CPU seconds of the API process(es), the S3 server, PostgreSQL (the backends serving this run's
    database; its shared background processes are left out) and this process (the uploaders, or the
    floor's threads), per side: where each capture's CPU goes on a machine where every part shares the
    same cores."""

    SIDES = ("bare", "floor", "api")

    def __init__(self, api_pids: list[int], s3_pid: int | None, floor_pid: int, database_url: str) -> None:
        self.api = [psutil.Process(pid) for pid in api_pids]
        self.s3 = psutil.Process(s3_pid) if s3_pid else None
        self.floor = psutil.Process(floor_pid)
        self.me = psutil.Process()
        self.db = psycopg.connect(
            database_url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True
        )
        self.spent: dict[str, defaultdict[str, float]] = {side: defaultdict(float) for side in self.SIDES}

    @staticmethod
    def _cpu(process: psutil.Process) -> float:
        try:
            times = process.cpu_times()
        except psutil.Error:
            return 0.0
        return times.user + times.system

    def postgres(self) -> dict[int, float]:
        pids = [row[0] for row in self.db.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )]  # fmt: skip
        out = {}
        for pid in pids:
            try:
                out[pid] = self._cpu(psutil.Process(pid))
            except psutil.Error:
                continue
        return out

    def now(self) -> dict[str, object]:
        return {
            "API": sum(self._cpu(p) for p in self.api),
            "S3 server": self._cpu(self.s3) if self.s3 else 0.0,
            "PostgreSQL": self.postgres(),
            "floor process": self._cpu(self.floor),
            "this process": self._cpu(self.me),
        }

    def add(self, side: str, before: dict[str, object]) -> None:
        after = self.now()
        for name, value in after.items():
            if isinstance(value, dict):
                earlier = before[name]
                assert isinstance(earlier, dict)
                self.spent[side][name] += sum(v - earlier.get(pid, 0.0) for pid, v in value.items())
            else:
                earlier_s = before[name]
                assert isinstance(earlier_s, float)
                self.spent[side][name] += value - earlier_s  # type: ignore[operator]

    def report(self, side: str, captures: int) -> dict[str, float]:
        mine = {"api": "uploaders", "floor": "bench process", "bare": "PUT threads"}[side]
        return {
            (mine if n == "this process" else n): round(s / captures * 1000, 2)
            for n, s in self.spent[side].items()
        }


def extra_api(bench: BenchStack, number: int) -> str:
    """Another API process on the stack's database, S3 server and Temporal: its URL."""
    port = free_port()
    env = {**bench.stack.child_env(), "WORKPROOF_API_PORT": str(port)}
    child = bench.stack.spawn(f"api-{number}", [sys.executable, "-m", "deploy.cli", "api"], env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for(
        f"API process {number}", lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 60, child
    )
    return url


def main() -> None:
    if sys.argv[1:2] == ["--floor-worker"]:
        floor_worker(sys.argv[2], Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--per-uploader", type=int, default=20, help="captures per uploader per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--images", type=int, default=16, help="distinct screens to cycle through")
    parser.add_argument("--api-processes", type=int, default=1, help="API processes behind the uploaders")
    args = parser.parse_args()

    print(f"making {args.images} screens of {WIDTH}x{HEIGHT} ...", flush=True)
    images = [screen(seed) for seed in range(args.images)]
    sizes = sorted(len(i) for i in images)
    print(
        f"WebP q60: {sizes[0] // 1024}-{sizes[-1] // 1024} KB, median {statistics.median(sizes) / 1024:.0f} KB"
    )

    # what the API does to each image before storing it, on one core: the validating decode and the
    # thumbnail, measured here alone
    began = time.process_time()
    for data in images:
        thumbnail(check_image(data, index=0, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, make_thumbnail=True))
    image_cpu_ms = (time.process_time() - began) / len(images) * 1000
    print(f"image work alone (validating decode + thumbnail): {image_cpu_ms:.0f} ms CPU per capture")

    with BenchStack() as bench:
        party = bench.party(backdate=timedelta(days=1))
        store = ObjectStore.from_settings(bench.running.settings)
        stack = bench.stack
        urls = [bench.running.api_url] + [extra_api(bench, n + 2) for n in range(args.api_processes - 1)]
        api_pids = [c.process.pid for c in stack.children if c.name.startswith("api") and c.process]
        uploads = Uploads(urls, party.contract_id, party.provider_token)
        images_file = bench.folder / "bench-images.json"
        images_file.write_text(json.dumps([i.hex() for i in images]))
        floor = FloorProcess(bench, party.contract_id, images_file)
        # warm every path (connections, imports, the first decode) outside the measurement
        run_api(uploads, images, 2)
        floor.run(1)
        run_bare_put(store, images, 2, -1)
        meter = CpuMeter(api_pids, stack.s3.process.pid if stack.s3 and stack.s3.process else None, floor.pid,
                         bench.running.database_url)  # fmt: skip
        rates: dict[str, list[float]] = {side: [] for side in CpuMeter.SIDES}
        latencies: dict[str, list[float]] = {side: [] for side in CpuMeter.SIDES}
        total = UPLOADERS * args.per_uploader
        sides: dict[str, Callable[[], Timed]] = {
            "bare": lambda: run_bare_put(store, images, args.per_uploader, len(rates["bare"])),
            "floor": lambda: floor.run(args.per_uploader),
            "api": lambda: run_api(uploads, images, args.per_uploader),
        }
        for round_no in range(args.rounds):
            order = ("bare", "floor", "api") if round_no % 2 == 0 else ("bare", "api", "floor")
            for side in order:
                before = meter.now()
                seconds, measured = sides[side]()
                meter.add(side, before)
                rates[side].append(total / seconds)
                latencies[side] += measured
            print(
                f"round {round_no + 1} ({' then '.join(order[1:])}): floor {rates['floor'][-1]:.1f}/s, "
                f"API {rates['api'][-1]:.1f}/s, ratio {rates['api'][-1] / rates['floor'][-1]:.2f} "
                f"(bare PUT {rates['bare'][-1]:.0f}/s)",
                flush=True,
            )
        floor.close()
        uploads.close()

    figure, base, bare = (statistics.median(rates[s]) for s in ("api", "floor", "bare"))
    pair_ratios = [a / f for a, f in zip(rates["api"], rates["floor"], strict=True)]
    # the ratio: the median of the rounds' own ratios (each round's floor and API ran back to back, under
    # the same load from the rest of the machine); the ratio of the median rates is printed beside it
    ratio = statistics.median(pair_ratios)
    ms = 1000.0

    def lat(side: str) -> str:
        return f"p50 {percentile(latencies[side], 50) * ms:.1f} ms, p95 {percentile(latencies[side], 95) * ms:.1f} ms"

    print(f"bare S3 PUT ({UPLOADERS} concurrent, information): {bare:.1f} captures/s, {lat('bare')}")
    print(f"validating floor ({UPLOADERS} threads: decode + thumbnail + sha256 + 2 PUTs + INSERT): "
          f"{base:.1f} captures/s, {lat('floor')}")  # fmt: skip
    print(f"API ingest ({UPLOADERS} uploaders, {args.api_processes} API process(es)): {figure:.1f} captures/s, "
          f"{lat('api')}")  # fmt: skip
    captures = total * args.rounds
    cpu = {side: meter.report(side, captures) for side in CpuMeter.SIDES}
    for side, label in (("bare", "bare PUT"), ("floor", "floor"), ("api", "API")):
        parts = ", ".join(f"{name} {v:.1f}" for name, v in cpu[side].items())
        print(f"CPU per capture, {label}: {sum(cpu[side].values()):.1f} ms ({parts})")
    # When both sides are CPU-bound on the same shared cores, the ratio of rates tends to the inverse ratio
    # of all the CPU a capture costs on each side; that one moves far less with the other work on the machine.
    cpu_ratio = sum(cpu["floor"].values()) / sum(cpu["api"].values())
    print(f"ratio {ratio:.3f} (median of the rounds {', '.join(f'{r:.2f}' for r in pair_ratios)}; of the median "
          f"rates {figure / base:.3f}; "
          f"target >= 0.6); to bare PUT {figure / bare:.3f}; CPU per capture, floor / API: {cpu_ratio:.3f}")  # fmt: skip
    print(
        json.dumps(
            {
                "bench": "ingest",
                "figure": round(figure, 2),
                "unit": "captures/s",
                "floor": round(base, 2),
                "ratio": round(ratio, 3),
                "ratio_of_median_rates": round(figure / base, 3),
                "round_ratios": [round(r, 3) for r in pair_ratios],
                "cpu_ratio": round(cpu_ratio, 3),
                "target_ratio": 0.6,
                "bare_put": round(bare, 2),
                "ratio_bare_put": round(figure / bare, 4),
                "uploaders": UPLOADERS,
                "api_processes": args.api_processes,
                "rounds": args.rounds,
                "captures": captures,
                "api_p50_ms": round(percentile(latencies["api"], 50) * ms, 1),
                "api_p95_ms": round(percentile(latencies["api"], 95) * ms, 1),
                "floor_p50_ms": round(percentile(latencies["floor"], 50) * ms, 1),
                "floor_p95_ms": round(percentile(latencies["floor"], 95) * ms, 1),
                "image_kb_median": round(statistics.median(sizes) / 1024),
                "image_cpu_ms": round(image_cpu_ms, 1),
                "cpu_ms_per_capture": cpu,
            }
        )
    )


if __name__ == "__main__":
    main()
