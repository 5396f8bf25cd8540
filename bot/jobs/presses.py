"""One order per result button at a time: a burst of presses on "Again" or "Upscale" is one job.

A press remembers the job it made, keyed by the button (the result's job, which result) and the
person pressing; another press of that button by them is refused until that job is final. Memory
in this process is enough: one process serves a database at a time (storage/instance_lock.py),
and one Telegram update sent twice is caught by the store anyway (a job per update). After a
restart the memory is empty, so a press then makes a new job, like any deliberate later press.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.errors import JobNotFoundError
from storage.models import Store

# A press is forgotten this long after it was made, whatever its job: a job ends well within a
# day (its task is polled for at most 24 h), and the memory must not grow for ever.
PRESS_MEMORY = 26 * 3600.0


class PressKind(StrEnum):
    AGAIN = "again"
    UPSCALE = "upscale"


@dataclass(frozen=True)
class Press:
    """A result button pressed by one person."""

    kind: PressKind
    job_id: int  # the job whose result carries the button
    index: int  # which of its results (0 for "Again")
    user_id: int


@dataclass
class _Made:
    job_id: int | None  # None: its job is still being accepted
    at: float


class Presses:
    """Which presses made a job that is not final yet (see the module docstring)."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._made: dict[Press, _Made] = {}

    async def begin(self, press: Press) -> bool:
        """True if ``press`` may make a job (it is then remembered until :meth:`made`); False
        while the job an earlier press of the same button made is not final."""
        self._forget_old()
        made = self._made.get(press)
        if made is not None:
            if made.job_id is None or not await self._is_final(made.job_id):
                return False
            if self._made.get(press) is not made:  # another press went first meanwhile
                return False
        self._made[press] = _Made(None, self._clock())
        return True

    def made(self, press: Press, job_id: int | None) -> None:
        """The job the press made, or None when it made none (the next press may try)."""
        if job_id is None:
            self._made.pop(press, None)
        else:
            self._made[press] = _Made(job_id, self._clock())

    async def _is_final(self, job_id: int) -> bool:
        try:
            return (await self._store.get_job(job_id)).state.is_final
        except JobNotFoundError:
            return True

    def _forget_old(self) -> None:
        cutoff = self._clock() - PRESS_MEMORY
        for press in [p for p, made in self._made.items() if made.at < cutoff]:
            del self._made[press]
