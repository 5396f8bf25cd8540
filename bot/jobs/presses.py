"""One order per result button at a time: a burst of presses on "Again" or "Upscale" is one job.

A press remembers the job it made, keyed by the button (the result's job, which result) and the
person pressing; another press of that button by them is refused until that job is final. The
memory is the store's ``presses`` table, not this process: behind a webhook load balancer the
presses of one burst may reach different instances, and each would otherwise make (and charge)
a job. ``Store.begin_press`` checks and records in one write transaction, so of two presses at
once, anywhere, one wins.

A press that began but has not said what it made holds the button for ``PRESS_PATIENCE`` only:
past that its process is taken for dead (accepting a job takes seconds), and the next press may
order. A press is forgotten PRESS_MEMORY after it was made, by the periodic prune (bot/app.py).
One Telegram update sent twice is caught by the store anyway (a job per update).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from bot.errors import StoreUnavailableError
from storage.models import Store

log = logging.getLogger(__name__)

# A press is forgotten this long after it was made, whatever its job: a job ends well within a
# day (its task is polled for at most 24 h), and the table must not grow for ever.
PRESS_MEMORY = timedelta(hours=26)
# How long a press that made no job yet holds its button: accepting takes seconds, so a press
# still unmade after this was lost with its process.
PRESS_PATIENCE = timedelta(seconds=120)


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

    @property
    def key(self) -> str:
        """The press's row in the store: the same for every press of this button by them."""
        return f"{self.kind.value}:{self.job_id}:{self.index}:{self.user_id}"


class Presses:
    """Which presses made a job that is not final yet (see the module docstring)."""

    def __init__(self, store: Store, *, patience: timedelta = PRESS_PATIENCE) -> None:
        self._store = store
        self._patience = patience

    async def begin(self, press: Press) -> bool:
        """True if ``press`` may make a job (it is then remembered until :meth:`made`); False
        while the job an earlier press of the same button made is not final."""
        return await self._store.begin_press(press.key, patience=self._patience)

    async def made(self, press: Press, job_id: int | None) -> None:
        """The job the press made, or None when it made none (the next press may try).

        A store that fails here is logged, not raised: the press's answer is already given and
        its job (if any) accepted; the unmade row frees the button after the patience.
        """
        try:
            await self._store.press_made(press.key, job_id)
        except StoreUnavailableError as exc:
            log.warning("press %s: its job %s was not recorded (%s)", press.key, job_id, exc)
