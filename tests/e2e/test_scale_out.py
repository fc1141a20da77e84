"""Scale-out for real, on one machine: two API processes and two workers against one Temporal dev server,
one PostgreSQL and a SeaweedFS of five processes (a master, two volume servers keeping every object on
both, a filer, the S3 gateway), while simulated agents upload captures and weeks settle. In the middle one
API, one worker and one volume server are SIGKILLed; the volume server is started again later (an
orchestrator would), the API and the worker are not: the survivors carry the rest.

What must hold afterwards: every capture the client was told was stored (2xx) is stored once, with its
bytes, and no object lacks its row; every capture was eventually stored (the agents retry, with the same
id, on the other API or after a 503); every week settled once (one charge, one release); the ledger sums
to zero with no duplicate key. The cluster is ``bench/scale.py``'s.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bench.ingest import screen
from bench.scale import (
    ScaleCluster,
    capture_problems,
    post_for,
    settle_weeks,
    stored,
    week_problems,
)
from bench.settlement import past_week, seed

pytestmark = pytest.mark.e2e

AGENTS = 4
SECONDS = 45.0
WEEKS = 16
KILL_AT = 15.0  # seconds into the run
VOLUME_BACK_AT = 27.0


def test_two_apis_two_workers_and_a_seaweedfs_cluster_survive_losing_one_of_each() -> None:
    images = [screen(n) for n in range(3)]
    with ScaleCluster(apis=2, workers=2, volumes=2) as cluster:
        parties = [cluster.party(backdate=timedelta(days=1)) for _ in range(AGENTS)]
        week = past_week()
        seeded = seed(cluster.running.database_url, week, WEEKS)
        first = datetime.fromtimestamp(math.ceil(time.time()) + 8, UTC)
        # The deadlines fall before, around and after the kills.
        deadlines = [first + timedelta(seconds=SECONDS * 0.8 * n / WEEKS) for n in range(WEEKS)]
        task_queue = cluster.running.settings.temporal_task_queue
        settling: dict[str, object] = {}

        def start_weeks() -> None:
            import threading

            def go() -> None:
                settling["result"] = cluster.run(
                    lambda client: settle_weeks(client, task_queue, seeded, week, deadlines, timeout_s=150)
                )

            thread = threading.Thread(target=go, name="weeks")
            thread.start()
            settling["thread"] = thread

        killed: list[str] = []

        def kill_one_of_each() -> None:
            for name in ("api-2", "worker-2", "volume-2"):
                cluster.kill(name)
                killed.append(name)

        agents, elapsed = post_for(
            cluster,
            parties,
            images,
            SECONDS,
            during=[
                (0.0, start_weeks),
                (KILL_AT, kill_one_of_each),
                (VOLUME_BACK_AT, lambda: cluster.revive("volume-2")),
            ],
        )
        thread = settling["thread"]
        thread.join(200)  # type: ignore[attr-defined]
        assert "result" in settling, "the weeks did not close in time"
        views, closes = settling["result"]  # type: ignore[misc]

        assert killed == ["api-2", "worker-2", "volume-2"]
        assert not cluster.parts["api-2"].alive() and not cluster.parts["worker-2"].alive()
        with pytest.raises(httpx.ConnectError):
            httpx.get(cluster.health["api-2"], timeout=2)

        problems = capture_problems(cluster, agents, parties, api_killed=True)
        problems += week_problems(cluster, seeded, views)
        assert not problems, problems[:10]

        count = stored(agents)
        answers = [a for agent in agents for s in agent.log.sent.values() for a in s.answers]
        assert count >= 30, f"only {count} captures stored in {elapsed:.0f}s"
        # The kill was felt (requests failed over to the other API) and survived.
        assert sum(agent.log.failovers for agent in agents) + answers.count(503) >= 1, answers[-20:]
        after_kill = [c for c in closes if c > deadlines[0].timestamp() + KILL_AT]
        assert after_kill, "no week settled after the kill: the surviving worker was not tested"
        print(
            f"{count} captures stored in {elapsed:.0f}s by {AGENTS} agents over 2 APIs; {len(seeded)} weeks "
            f"settled; failovers {sum(a.log.failovers for a in agents)}, 503s {answers.count(503)}"
        )
