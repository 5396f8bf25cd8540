"""One component that follows every in-flight task and decides when each one is polled.

Policy (reasoning in docs/polling.md): the first poll comes ``first_delay`` after the submit;
then we jump to where tasks start to end, and poll there at intervals of
sqrt(2 * lag_per_poll / hazard), between ``min_interval`` and ``max_dense_interval``: sparse where
few tasks end, dense where many do. Past the longest task seen the interval grows, bounded by
``max_interval``. Region and hazard are learned from finished tasks, starting from a prior.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

from bot.bailian.models import TaskOutcome
from bot.errors import DashScopeError, RetryableError

log = logging.getLogger(__name__)

# wanx2.1-imageedit tasks typically take 5-15 s (dashscope-facts.md): the prior until we learn.
PRIOR_LATENCY = (5.0, 15.0)
# How much the prior weighs, in finished tasks: it fades as real ones are learned.
PRIOR_WEIGHT = 10.0
# The price of one poll in seconds of detection lag: intervals follow sqrt(2 * this / hazard).
LAG_PER_POLL = 0.02
MIN_POLL_INTERVAL = 0.15
# Never more than this between two polls while a task is where tasks usually end.
MAX_DENSE_INTERVAL = 0.8
MAX_POLL_INTERVAL = 5.0
# While a job waits for an in-progress slot, a late end also idles that job: a poll is then worth
# more, and its price in lag is multiplied by this (intervals shrink by its square root).
CONTENDED_LAG_FACTOR = 0.25
# Slack around the learned region, and the half-width of the window that estimates the hazard.
REGION_MARGIN = 0.5
LEARNING_WINDOW = 50
MIN_SAMPLES = 3
STATS_KEPT = 1000
# A task the service ran is never given up for transient errors while its result can exist:
# task ids (and result URLs) live 24 h. Through an outage polls back off up to this interval.
TASK_PATIENCE = 24 * 3600.0
MAX_OUTAGE_INTERVAL = 60.0


@dataclass(frozen=True)
class PollPolicy:
    """The knobs of the polling schedule; defaults as above."""

    first_delay: float = 2.0
    lag_per_poll: float = LAG_PER_POLL
    min_interval: float = MIN_POLL_INTERVAL
    max_dense_interval: float = MAX_DENSE_INTERVAL
    max_interval: float = MAX_POLL_INTERVAL
    prior_latency: tuple[float, float] = PRIOR_LATENCY
    prior_weight: float = PRIOR_WEIGHT
    margin: float = REGION_MARGIN
    learning_window: int = LEARNING_WINDOW
    min_samples: int = MIN_SAMPLES
    contended_lag_factor: float = CONTENDED_LAG_FACTOR
    patience: float = TASK_PATIENCE
    max_outage_interval: float = MAX_OUTAGE_INTERVAL


def outage_poll_delay(policy: PollPolicy, failures: int) -> float:
    """Seconds before the next poll after ``failures`` polls in a row met a service down."""
    return min(policy.max_outage_interval, policy.max_interval * 2.0 ** max(0, failures - 1))


def contended_policy(policy: PollPolicy) -> PollPolicy:
    """The schedule while somebody waits for a slot: polls priced lower, dense part denser."""
    factor = min(1.0, max(policy.contended_lag_factor, 0.0))
    return replace(
        policy,
        lag_per_poll=policy.lag_per_poll * factor,
        max_dense_interval=max(
            policy.min_interval, policy.max_dense_interval * math.sqrt(factor)
        ),
    )


class LatencyModel:
    """Durations (submit to end) of finished tasks: the region where tasks end, and the hazard.

    Tasks still running count as censored observations ("lasts at least this long"), as in a
    Kaplan-Meier estimate: without them, tasks started together would teach us only the short
    durations (survivorship bias). The prior is a uniform distribution worth ``prior_weight``
    finished tasks.
    """

    def __init__(self, policy: PollPolicy) -> None:
        self._policy = policy
        self._samples: deque[float] = deque(maxlen=policy.learning_window)

    @property
    def samples(self) -> tuple[float, ...]:
        return tuple(self._samples)

    def observe(self, duration: float) -> None:
        self._samples.append(max(0.0, duration))

    def region(self, *, running_elapsed: float = 0.0) -> tuple[float, float]:
        """Elapsed times between which tasks are expected to end.

        ``running_elapsed`` is the age of the oldest *other* task still running: durations at
        least that long exist, though none has finished yet.
        """
        policy = self._policy
        prior_low, prior_high = policy.prior_latency
        if len(self._samples) < policy.min_samples:
            low = min([prior_low, *self._samples]) - policy.margin
            high = max([prior_high, *self._samples]) + policy.margin
        else:
            low = min(self._samples) - policy.margin
            high = max(self._samples) + policy.margin
        high = max(high, running_elapsed + policy.margin)
        return max(0.0, low), high

    def hazard(self, elapsed: float, running: Sequence[float] = ()) -> float:
        """Estimated rate (1/s) at which tasks that reached ``elapsed`` end right then.

        Ends within ``margin`` of ``elapsed`` divided by the time tasks spent at risk there
        (an occurrence/exposure rate). ``running`` holds the ages of tasks still running,
        the asking one included: their time so far counts as exposure, their end is unknown.
        """
        policy = self._policy
        low, high = max(0.0, elapsed - policy.margin), elapsed + policy.margin
        ended = float(sum(1 for d in self._samples if low <= d <= high))
        exposure = sum(_overlap(d, low, high) for d in self._samples)
        exposure += sum(_overlap(age, low, high) for age in running)
        prior_low, prior_high = policy.prior_latency
        span = max(prior_high - prior_low, 1e-9)
        ended += policy.prior_weight * (
            _uniform_cdf(high, prior_low, span) - _uniform_cdf(low, prior_low, span)
        )
        exposure += policy.prior_weight * (
            _uniform_survival_integral(high, prior_low, span)
            - _uniform_survival_integral(low, prior_low, span)
        )
        return ended / exposure if exposure > 0 else 0.0


def _overlap(duration: float, low: float, high: float) -> float:
    """Time a task that ran for ``duration`` spent inside [low, high]."""
    return max(0.0, min(duration, high) - low)


def _uniform_cdf(t: float, low: float, span: float) -> float:
    return min(1.0, max(0.0, (t - low) / span))


def _uniform_survival_integral(t: float, low: float, span: float) -> float:
    """Integral from 0 to t of the survival function of a uniform [low, low + span]."""
    if t <= low:
        return t
    inside = min(t, low + span) - low
    return low + inside - inside * inside / (2 * span)


def next_poll_delay(
    policy: PollPolicy, region: tuple[float, float], elapsed: float, hazard: float
) -> float:
    """Seconds from now until the next poll of a task that is ``elapsed`` seconds old.

    Inside the region the interval is sqrt(2 * lag_per_poll / hazard): over a short interval
    d, a poll costs lag_per_poll and the expected lag is hazard * d**2 / 2, so cost per second
    lag_per_poll / d + hazard * d / 2 is lowest there. Sparse where tasks rarely end, dense
    where they often do.
    """
    low, high = region
    if elapsed < low:
        # Before the region: go straight to its start (bounded, in case it is far).
        delay = low - elapsed
    elif elapsed <= high:
        if hazard > 0:
            delay = min(math.sqrt(2 * policy.lag_per_poll / hazard), policy.max_dense_interval)
        else:
            delay = policy.max_dense_interval
    else:
        # Longer than any task seen: back off in proportion to the overshoot.
        delay = max(policy.max_dense_interval, (elapsed - high) / 2.0)
    return min(max(delay, policy.min_interval), policy.max_interval)


@dataclass
class _Tracked:
    task_id: str
    started_at: float
    future: asyncio.Future[TaskOutcome]
    learn: bool = True  # False for resumed tasks: their true start is unknown
    polls: int = 0
    runner: asyncio.Task[None] | None = None
    # Set once polls met a service that stayed down through the retry budget.
    trouble: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class PollerStats:
    """What the poller did, for tests and benchmarks."""

    # Per task, for the most recent STATS_KEPT tasks (a long-running bot must not grow them).
    polls: dict[str, int] = field(default_factory=dict)
    finished_at: dict[str, float] = field(default_factory=dict)  # clock time the end was seen
    tracked: int = 0
    total_polls: int = 0
    contended_polls: int = 0  # polls scheduled by the contended schedule

    def forget_oldest(self) -> None:
        for per_task in (self.polls, self.finished_at):
            while len(per_task) > STATS_KEPT:
                del per_task[next(iter(per_task))]


class Poller:
    """Follows tasks until they end and resolves one future per task with its outcome.

    ``query`` does one status query (rate-limited and retried by its owner); ``on_end`` is
    called once per task when it ended or polling gave up, so the owner can free its slot.
    ``contended`` says whether a job is waiting for a slot: then the denser
    :func:`contended_policy` schedule is used for tasks no older than the tasks seen to end,
    since a late end idles that job too.
    """

    def __init__(
        self,
        query: Callable[[str], Awaitable[TaskOutcome]],
        *,
        on_end: Callable[[str], None],
        policy: PollPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        contended: Callable[[], bool] = lambda: False,
        on_detected: Callable[[float], None] = lambda lag: None,
    ) -> None:
        self._query = query
        self._on_detected = on_detected
        self._on_end = on_end
        self.policy = policy or PollPolicy()
        self._contended_policy = contended_policy(self.policy)
        self._contended = contended
        self._clock = clock
        self.model = LatencyModel(self.policy)
        self._tasks: dict[str, _Tracked] = {}
        self.stats = PollerStats()
        self._closed = False

    def is_tracking(self, task_id: str) -> bool:
        return task_id in self._tasks

    def track(
        self, task_id: str, *, started_at: float | None = None, first_delay: float | None = None
    ) -> asyncio.Future[TaskOutcome]:
        """Start following a task (idempotent); returns the future of its outcome."""
        if self._closed:
            raise RuntimeError("poller is closed")
        existing = self._tasks.get(task_id)
        if existing is not None:
            return existing.future
        loop = asyncio.get_running_loop()
        future: asyncio.Future[TaskOutcome] = loop.create_future()
        # Nobody may ever await a future whose task failed (the caller gave up): mark the
        # exception as seen so asyncio does not log it as lost.
        future.add_done_callback(_consume_exception)
        # Without a start time (a task resumed after a restart) its duration teaches nothing.
        tracked = _Tracked(
            task_id,
            self._clock() if started_at is None else started_at,
            future,
            learn=started_at is not None,
        )
        self._tasks[task_id] = tracked
        self.stats.tracked += 1
        self.stats.polls[task_id] = 0
        self.stats.forget_oldest()
        delay = self.policy.first_delay if first_delay is None else first_delay
        tracked.runner = loop.create_task(self._follow(tracked, delay), name=f"poll {task_id}")
        return future

    def trouble(self, task_id: str) -> asyncio.Event:
        """Set once the task's polls met a service down past the retry budget (still polled)."""
        return self._tasks[task_id].trouble

    def forget(self, task_id: str) -> None:
        """Drop a finished task's entry (its future has been handed out)."""
        tracked = self._tasks.get(task_id)
        if tracked is not None and tracked.future.done():
            del self._tasks[task_id]

    async def _follow(self, tracked: _Tracked, delay: float) -> None:
        failures = 0  # polls in a row that met the service down
        try:
            while True:
                await asyncio.sleep(delay)
                sent_at = self._clock()
                tracked.polls += 1
                self.stats.polls[tracked.task_id] = tracked.polls
                self.stats.total_polls += 1
                try:
                    outcome = await self._query(tracked.task_id)
                except RetryableError as exc:
                    failures += 1
                    delay = self._through_outage(tracked, exc, failures)
                    continue
                failures = 0
                now = self._clock()
                if outcome.status.is_final:
                    self.stats.finished_at[tracked.task_id] = now
                    # The end lies between the previous poll and this one; the poll's send time
                    # is a fair estimate when polls are dense, and an upper bound otherwise.
                    if tracked.learn:
                        self.model.observe(sent_at - tracked.started_at)
                    # The end came after the previous poll: the last wait bounds the lag.
                    self._on_detected(delay)
                    tracked.future.set_result(outcome)
                    return
                elapsed = now - tracked.started_at
                others = self._running_ages(now, excluding=tracked)
                # Only where finished tasks say an end is plausible: a task older than any seen
                # (a stuck or slow service) is not worth the budget, whoever waits.
                contended = self._contended() and elapsed <= self.model.region()[1]
                self.stats.contended_polls += contended
                delay = next_poll_delay(
                    self._contended_policy if contended else self.policy,
                    self.model.region(running_elapsed=max(others, default=0.0)),
                    elapsed,
                    self.model.hazard(elapsed, [elapsed, *others]),
                )
        except DashScopeError as exc:
            log.warning("polling task %s stopped: %s", tracked.task_id, exc.code)
            tracked.future.set_exception(exc)
        except Exception as exc:  # a bug: still wake the waiter instead of hanging it
            log.exception("polling task %s crashed", tracked.task_id)
            tracked.future.set_exception(exc)
        except asyncio.CancelledError:
            if not tracked.future.done():
                tracked.future.cancel()
            raise
        finally:
            self._on_end(tracked.task_id)

    def _through_outage(self, tracked: _Tracked, exc: RetryableError, failures: int) -> float:
        """The delay before polling a task again through an outage; re-raises past patience."""
        if self._clock() - tracked.started_at > self.policy.patience:
            raise exc
        if not tracked.trouble.is_set():
            log.warning("task %s: the service is down (%s); still polling", tracked.task_id,
                        exc.code)
            tracked.trouble.set()
        return outage_poll_delay(self.policy, failures)

    def _running_ages(self, now: float, *, excluding: _Tracked) -> list[float]:
        return [
            now - other.started_at
            for other in self._tasks.values()
            if other is not excluding and other.learn and not other.future.done()
        ]

    async def forget_all(self) -> None:
        """Stop following every task and forget them (their futures are cancelled, ``on_end``
        frees their slots); unlike :meth:`close`, a task tracked again is followed anew."""
        tracked, self._tasks = list(self._tasks.values()), {}
        runners = [t.runner for t in tracked if t.runner is not None and not t.runner.done()]
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)

    async def close(self) -> None:
        """Stop following every task; their futures are cancelled."""
        self._closed = True
        runners = [t.runner for t in self._tasks.values() if t.runner is not None]
        for runner in runners:
            runner.cancel()
        for runner in runners:
            with contextlib.suppress(asyncio.CancelledError):
                await runner


def _consume_exception(future: asyncio.Future[TaskOutcome]) -> None:
    if not future.cancelled():
        future.exception()
