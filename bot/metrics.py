"""The bot's Prometheus metrics: one registry per application, fed through this module only.

Counters and histograms are moved by the code that knows (the DashScope client, the poller,
the acceptor, the deliverer); gauges that the store already knows (jobs by state, the queue)
and the slots in use are read at scrape time by :meth:`Metrics.render`, so they are right
after a restart too. A registry of its own, not prometheus_client's global one: tests run
many applications in one process.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from storage.models import JobState, Store

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

# Seconds from a request's acceptance to its images in the chat: the emulator's fraction of a
# second up to a DashScope queue of many minutes.
DELIVERY_BUCKETS = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)
# Seconds between a task's end and the poll that saw it (an upper bound: the last interval).
LAG_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60)


class Metrics:
    """Every metric of one bot; ``render()`` is the /metrics body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._jobs = Gauge("bot_jobs", "Jobs in the store by state", ["state"], registry=r)
        self._leader = Gauge("bot_leader",
                             "1 while this instance runs the job pipeline (the leader)",
                             registry=r)
        self._queue = Gauge("bot_queue_depth", "Jobs waiting for a DashScope slot", registry=r)
        self._tasks = Gauge("bot_dashscope_tasks_in_progress",
                            "DashScope tasks holding a slot", registry=r)
        self._requests = Counter("bot_dashscope_requests", "DashScope API requests sent",
                                 ["endpoint"], registry=r)
        self._errors = Counter("bot_dashscope_errors", "DashScope errors by code",
                               ["code"], registry=r)
        self._lag = Histogram("bot_dashscope_detection_lag_seconds",
                              "Upper bound of the delay between a task's end and its detection",
                              buckets=LAG_BUCKETS, registry=r)
        self._delivery = Histogram("bot_delivery_seconds",
                                   "Seconds from a request's acceptance to its delivery",
                                   buckets=DELIVERY_BUCKETS, registry=r)
        self._refusals = Counter("bot_quota_refusals", "Requests refused for the quota",
                                 registry=r)
        self._stars = Gauge("bot_stars_revenue_month",
                            "Telegram Stars paid this month, net of refunds", registry=r)
        self._stars_enabled = False

    # --- fed by the code that knows ----------------------------------------------------------

    def lead(self, leading: bool) -> None:
        """This instance became the leader (or stopped being it)."""
        self._leader.set(1 if leading else 0)

    def dashscope_request(self, endpoint: str) -> None:
        self._requests.labels(endpoint).inc()

    def dashscope_error(self, code: str) -> None:
        self._errors.labels(code or "unknown").inc()

    def detection_lag(self, seconds: float) -> None:
        self._lag.observe(max(seconds, 0.0))

    def delivered(self, seconds: float) -> None:
        self._delivery.observe(max(seconds, 0.0))

    def quota_refused(self) -> None:
        self._refusals.inc()

    def sell_stars(self) -> None:
        """Show the Stars revenue (only when STAR_PACKS sells anything)."""
        self._stars_enabled = True

    # --- read at scrape time -----------------------------------------------------------------

    async def render(
        self, store: Store | None, tasks_in_progress: Callable[[], int] | None = None
    ) -> bytes:
        """The text exposition format, with the store's numbers read now."""
        if store is not None:
            counts = await store.job_counts()
            for state in JobState:
                self._jobs.labels(state.value).set(counts.get(state, 0))
            self._queue.set(counts.get(JobState.QUEUED, 0))
            if self._stars_enabled:
                revenue = await store.star_revenue()
                self._stars.set(revenue.paid_month - revenue.refunded_month)
        if tasks_in_progress is not None:
            self._tasks.set(tasks_in_progress())
        return generate_latest(self.registry)

    def registry_text(self) -> str:
        """What is recorded now, without reading the store (for tests and debugging)."""
        return generate_latest(self.registry).decode()


