"""A small soak (seconds): many users at once, the caps at their defaults, nothing lost.

The full run (200 users, 2000 requests, 0.5-2 s latency, the bot as a subprocess) is
``python -m bench.soak``; its figures are in docs/reliability.md. This size is bound by the
Bot API's 30 calls/s (PTB's rate limiter: a job makes about six calls) and the 10 DashScope
requests/s, so it keeps the number of jobs small through a low quota.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import DELIVERED, FAILED, REFUSED, soak

pytestmark = pytest.mark.slow

USERS, REQUESTS, QUOTA = 10, 120, 3


async def test_small_soak_delivers_or_refuses_everything_within_the_caps(
    tmp_path: Path,
) -> None:
    report = await soak(
        users=USERS, requests=REQUESTS, latency=(0.05, 0.2), quota=QUOTA, qwen_latency=0.05,
        poll_interval=0.05, workdir=tmp_path, in_process=True, timeout=60,
    )
    assert sum(report.outcomes.values()) == REQUESTS
    assert report.outcomes[FAILED] == 0 and not report.stray
    # Each user's quota is used up, never exceeded; the rest is refused with a message.
    assert report.images_delivered <= USERS * QUOTA
    assert report.images_delivered >= USERS * (QUOTA - 1)  # at most one n=2 left unserved
    assert report.outcomes[DELIVERED] + report.outcomes[REFUSED] == REQUESTS
    assert report.max_requests_per_second <= 10
    assert report.max_tasks_in_progress <= 2
    assert not report.log_problems
    # The whole test process (fakes included) does not keep growing once warm.
    warm, late_peak = report.rss_after_warmup()
    assert late_peak - warm < 64 * 1024
