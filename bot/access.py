"""Who may use the bot: the allow-lists of the settings, and whom we told no lately.

With ALLOWED_USER_IDS and ALLOWED_CHAT_IDS both empty everyone may (as before the lists
existed). Otherwise an update is served when its sender is listed, or its chat is (then every
member of that group may use the bot), or its sender is an admin. Anyone else is turned away
before anything runs: nothing is downloaded, stored or sent to DashScope.

They are told so at most once per person per hour, so that a stranger cannot make the bot talk
on every message. That memory is in this process only: a restart may refuse someone once more
within the hour, which costs one message and spares a database write for every stranger.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.config import Settings

# A refused person is told at most once per this many seconds.
REFUSAL_INTERVAL = 3600.0
# People remembered at most; those told longest ago are forgotten first.
MAX_REMEMBERED = 10_000


@dataclass(frozen=True)
class AccessPolicy:
    """The allow-lists; both empty: everyone is allowed."""

    allowed_user_ids: frozenset[int] = frozenset()
    allowed_chat_ids: frozenset[int] = frozenset()
    admin_user_ids: frozenset[int] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessPolicy:
        return cls(
            allowed_user_ids=settings.allowed_user_ids,
            allowed_chat_ids=settings.allowed_chat_ids,
            admin_user_ids=settings.admin_user_ids,
        )

    @property
    def restricted(self) -> bool:
        return bool(self.allowed_user_ids or self.allowed_chat_ids)

    def allows(self, user_id: int | None, chat_id: int | None) -> bool:
        """Whether an update from ``user_id`` in ``chat_id`` (either may be unknown) is served."""
        if not self.restricted:
            return True
        if user_id is not None and (
            user_id in self.admin_user_ids or user_id in self.allowed_user_ids
        ):
            return True
        return chat_id is not None and chat_id in self.allowed_chat_ids


class RefusalMemory:
    """When each refused person was last told; says whether to tell them again."""

    def __init__(
        self, *, interval: float = REFUSAL_INTERVAL, clock: Callable[[], float] = time.monotonic,
        max_remembered: int = MAX_REMEMBERED,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._max_remembered = max_remembered
        self._told: dict[int, float] = {}  # user id -> when told; oldest first

    def should_tell(self, user_id: int) -> bool:
        """True (and remembered as told now) unless ``user_id`` was told within the interval."""
        now = self._clock()
        last = self._told.get(user_id)
        if last is not None and now - last < self._interval:
            return False
        self._told.pop(user_id, None)  # re-inserted last: the dict stays ordered by time
        if len(self._told) >= self._max_remembered:
            self._forget(now)
        self._told[user_id] = now
        return True

    def _forget(self, now: float) -> None:
        for user_id, told in list(self._told.items()):
            if now - told < self._interval:
                break  # ordered by time: the rest are recent too
            del self._told[user_id]
        while len(self._told) >= self._max_remembered:  # all recent: forget the oldest
            del self._told[next(iter(self._told))]
