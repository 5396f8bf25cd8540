"""Conversations that wait for the user: a mask after /erase, a choice on an inline keyboard.

Kept in the store, not in memory, so a restart does not forget a user halfway through.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from storage.models import Store

# How long the bot waits for the mask after /erase.
MASK_WAIT_SECONDS = 600
# How long an inline keyboard of choices stays usable.
PICK_TTL_SECONDS = 24 * 3600


@dataclass(frozen=True)
class MaskWait:
    user_id: int
    chat_id: int
    file_id: str  # the base image
    command_text: str  # the /erase command as typed, re-parsed when the mask comes
    request_message_id: int
    prompt_message_id: int  # the bot's "send me a mask" message (group users reply to it)
    expires_at: float


@dataclass(frozen=True)
class Pick:
    user_id: int
    chat_id: int
    file_id: str
    request_message_id: int
    command_text: str  # "" for the actions keyboard, the /localstyle text for the style keyboard
    expires_at: float


class PendingStore:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def start_mask_wait(
        self, *, user_id: int, chat_id: int, file_id: str, command_text: str,
        request_message_id: int, prompt_message_id: int,
    ) -> MaskWait:
        wait = MaskWait(user_id, chat_id, file_id, command_text, request_message_id,
                        prompt_message_id, self._clock() + MASK_WAIT_SECONDS)
        await self._store.set_setting(_mask_key(chat_id, user_id), json.dumps(asdict(wait)))
        return wait

    async def mask_wait(self, chat_id: int, user_id: int) -> MaskWait | None:
        """The user's open wait in this chat, if any and not expired."""
        raw = await self._store.get_setting(_mask_key(chat_id, user_id))
        if not raw:
            return None
        wait = MaskWait(**json.loads(raw))
        if wait.expires_at < self._clock():
            await self.end_mask_wait(chat_id, user_id)
            return None
        return wait

    async def end_mask_wait(self, chat_id: int, user_id: int) -> bool:
        """Close the wait; True if there was one."""
        key = _mask_key(chat_id, user_id)
        had = bool(await self._store.get_setting(key))
        if had:
            await self._store.set_setting(key, "")
        return had

    async def put_pick(
        self, *, keyboard_message_id: int, user_id: int, chat_id: int, file_id: str,
        request_message_id: int, command_text: str = "",
    ) -> None:
        pick = Pick(user_id, chat_id, file_id, request_message_id, command_text,
                    self._clock() + PICK_TTL_SECONDS)
        await self._store.set_setting(
            _pick_key(chat_id, keyboard_message_id), json.dumps(asdict(pick))
        )

    async def get_pick(self, chat_id: int, keyboard_message_id: int) -> Pick | None:
        """The choice behind a keyboard, if still open (dropped once used)."""
        key = _pick_key(chat_id, keyboard_message_id)
        raw = await self._store.get_setting(key)
        if not raw:
            return None
        pick = Pick(**json.loads(raw))
        if pick.expires_at < self._clock():
            await self._store.set_setting(key, "")
            return None
        return pick

    async def drop_pick(self, chat_id: int, keyboard_message_id: int) -> None:
        await self._store.set_setting(_pick_key(chat_id, keyboard_message_id), "")


def _mask_key(chat_id: int, user_id: int) -> str:
    return f"maskwait:{chat_id}:{user_id}"


def _pick_key(chat_id: int, message_id: int) -> str:
    return f"pick:{chat_id}:{message_id}"
