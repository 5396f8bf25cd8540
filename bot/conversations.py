"""Conversations that wait for the user: a mask after /erase, a choice on an inline keyboard.

Kept in the store's ``conversations`` table, not in memory, so a restart does not forget a
person halfway through. Each kind has a typed record here; the store keeps it as opaque JSON
with its owner and expiry, and deletes it when it is used, cancelled or expired. The parsed
command is stored, never a command text to parse again.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace

from bot.commands import ParsedCommand
from storage.models import ConversationKind, Store

# How long the bot waits for the mask after /erase.
MASK_WAIT_SECONDS = 600
# How long an inline keyboard of choices stays usable.
PICK_TTL_SECONDS = 24 * 3600
# How long a command sent without a photo waits for the photo.
PENDING_COMMAND_SECONDS = 600


@dataclass(frozen=True)
class MaskCandidate:
    """A mask made from the photo painted over, shown to its owner before anything is charged."""

    preview: str  # 8 hex digits naming this candidate in its preview's buttons
    png: bytes
    parsed: ParsedCommand  # the request once the painted copy's caption added to it
    message_id: int  # the message that carried the painted copy

    def to_dict(self) -> dict[str, object]:
        return {"preview": self.preview, "png": base64.b64encode(self.png).decode("ascii"),
                "parsed": self.parsed.to_json(), "message_id": self.message_id}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> MaskCandidate:
        return cls(str(data["preview"]), base64.b64decode(str(data["png"])),
                   ParsedCommand.from_json(str(data["parsed"])), int(str(data["message_id"])))


@dataclass(frozen=True)
class MaskWait:
    """/erase asked for a mask: the request waits for its owner's next image in the chat."""

    user_id: int
    chat_id: int
    parsed: ParsedCommand
    file_id: str  # the base image
    request_message_id: int
    prompt_message_id: int  # the bot's "send me a mask" message (group users reply to it)
    # A painted copy made into a mask, waiting for [Run] under its preview; None: none yet.
    candidate: MaskCandidate | None = None

    def to_json(self) -> str:
        return json.dumps({
            "parsed": self.parsed.to_json(), "file_id": self.file_id,
            "request_message_id": self.request_message_id,
            "prompt_message_id": self.prompt_message_id,
            "candidate": self.candidate.to_dict() if self.candidate is not None else None,
        })

    def with_caption(self, extra: ParsedCommand) -> ParsedCommand:
        """The request once the mask's caption adds to it: words extend the prompt, options
        given in the caption win."""
        prompt = " ".join(part for part in (self.parsed.prompt, extra.prompt) if part)
        return replace(
            self.parsed, prompt=prompt,
            n=extra.n if extra.n != 1 else self.parsed.n,
            seed=extra.seed if extra.seed is not None else self.parsed.seed,
        )

    @classmethod
    def from_json(cls, user_id: int, chat_id: int, payload: str) -> MaskWait:
        data = json.loads(payload)
        candidate = data.get("candidate")
        return cls(user_id, chat_id, ParsedCommand.from_json(data["parsed"]), data["file_id"],
                   int(data["request_message_id"]), int(data["prompt_message_id"]),
                   MaskCandidate.from_dict(candidate) if candidate else None)


@dataclass(frozen=True)
class Pick:
    """An inline keyboard of choices about one image, usable once by its owner."""

    user_id: int
    chat_id: int
    file_id: str
    request_message_id: int
    # The request waiting for the choice: the /localstyle command for the style keyboard;
    # None for the actions keyboard (the choice is the command).
    parsed: ParsedCommand | None = None

    def to_json(self) -> str:
        return json.dumps({
            "file_id": self.file_id, "request_message_id": self.request_message_id,
            "parsed": self.parsed.to_json() if self.parsed is not None else None,
        })

    @classmethod
    def from_json(cls, user_id: int, chat_id: int, payload: str) -> Pick:
        data = json.loads(payload)
        parsed = data.get("parsed")
        return cls(user_id, chat_id, data["file_id"], int(data["request_message_id"]),
                   ParsedCommand.from_json(parsed) if parsed is not None else None)


@dataclass(frozen=True)
class MaskQuestion:
    """An image that does not look like a mask came while one was awaited: its owner says
    whether it is the mask or a new photo (a keyboard; kept as a pick of its own sort)."""

    user_id: int
    chat_id: int
    file_id: str  # the image in question
    message_id: int  # the message that carried it
    # Kept as sent: it adds to the /erase prompt if the image is the mask, or is an /edit if it
    # is a new photo, so it can only be parsed once the answer is known.
    caption: str

    def to_json(self) -> str:
        return json.dumps({"question": "mask", "file_id": self.file_id,
                           "message_id": self.message_id, "caption": self.caption})

    @classmethod
    def from_json(cls, user_id: int, chat_id: int, payload: str) -> MaskQuestion | None:
        """The question, or None for a payload of another pick."""
        data = json.loads(payload)
        if data.get("question") != "mask":
            return None
        return cls(user_id, chat_id, data["file_id"], int(data["message_id"]), data["caption"])


def _is_mask_question(payload: str) -> bool:
    return bool(json.loads(payload).get("question") == "mask")


@dataclass(frozen=True)
class PendingCommand:
    """A command sent without a photo (from the menu, typed alone): the next photo runs it."""

    user_id: int
    chat_id: int
    parsed: ParsedCommand
    request_message_id: int

    def to_json(self) -> str:
        return json.dumps({"parsed": self.parsed.to_json(),
                           "request_message_id": self.request_message_id})

    @classmethod
    def from_json(cls, user_id: int, chat_id: int, payload: str) -> PendingCommand:
        data = json.loads(payload)
        return cls(user_id, chat_id, ParsedCommand.from_json(data["parsed"]),
                   int(data["request_message_id"]))


class Conversations:
    """Typed access to the conversations table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def start_mask_wait(self, wait: MaskWait) -> None:
        """Wait for ``wait.user_id``'s mask in the chat, replacing an earlier wait there."""
        await self._store.put_conversation(
            ConversationKind.MASK_WAIT, wait.chat_id, wait.user_id, user_id=wait.user_id,
            payload=wait.to_json(), ttl_seconds=MASK_WAIT_SECONDS,
        )

    async def mask_wait(self, chat_id: int, user_id: int) -> MaskWait | None:
        """The user's open wait in this chat, if any and not expired."""
        row = await self._store.get_conversation(ConversationKind.MASK_WAIT, chat_id, user_id)
        return MaskWait.from_json(user_id, chat_id, row.payload) if row else None

    async def end_mask_wait(self, chat_id: int, user_id: int) -> bool:
        """Close the wait; True if there was one."""
        row = await self._store.end_conversation(ConversationKind.MASK_WAIT, chat_id, user_id)
        return row is not None

    async def put_pick(self, keyboard_message_id: int, pick: Pick) -> None:
        await self._store.put_conversation(
            ConversationKind.PICK, pick.chat_id, keyboard_message_id, user_id=pick.user_id,
            payload=pick.to_json(), ttl_seconds=PICK_TTL_SECONDS,
        )

    async def get_pick(self, chat_id: int, keyboard_message_id: int) -> Pick | None:
        """The choice behind a keyboard, if still open."""
        row = await self._store.get_conversation(ConversationKind.PICK, chat_id,
                                                 keyboard_message_id)
        if row is None or _is_mask_question(row.payload):
            return None
        return Pick.from_json(row.user_id, chat_id, row.payload)

    async def take_pick(self, chat_id: int, keyboard_message_id: int) -> Pick | None:
        """Use the choice: it is gone afterwards, and of two presses at once only one gets it."""
        row = await self._store.end_conversation(ConversationKind.PICK, chat_id,
                                                 keyboard_message_id)
        return Pick.from_json(row.user_id, chat_id, row.payload) if row else None

    async def put_mask_question(self, keyboard_message_id: int, question: MaskQuestion) -> None:
        """Keep the question for as long as a mask wait lasts."""
        await self._store.put_conversation(
            ConversationKind.PICK, question.chat_id, keyboard_message_id,
            user_id=question.user_id, payload=question.to_json(),
            ttl_seconds=MASK_WAIT_SECONDS,
        )

    async def mask_question(self, chat_id: int, keyboard_message_id: int) -> MaskQuestion | None:
        """The question behind a keyboard, if still open."""
        row = await self._store.get_conversation(ConversationKind.PICK, chat_id,
                                                 keyboard_message_id)
        return MaskQuestion.from_json(row.user_id, chat_id, row.payload) if row else None

    async def take_mask_question(
        self, chat_id: int, keyboard_message_id: int
    ) -> MaskQuestion | None:
        """Answer the question: of two presses at once only one gets it."""
        row = await self._store.end_conversation(ConversationKind.PICK, chat_id,
                                                 keyboard_message_id)
        return MaskQuestion.from_json(row.user_id, chat_id, row.payload) if row else None

    async def start_pending_command(self, pending: PendingCommand) -> None:
        """Wait for the person's next photo in the chat, replacing an earlier pending command."""
        await self._store.put_conversation(
            ConversationKind.PENDING_COMMAND, pending.chat_id, pending.user_id,
            user_id=pending.user_id, payload=pending.to_json(),
            ttl_seconds=PENDING_COMMAND_SECONDS,
        )

    async def take_pending_command(self, chat_id: int, user_id: int) -> PendingCommand | None:
        """The person's pending command, used up (each runs once)."""
        row = await self._store.end_conversation(ConversationKind.PENDING_COMMAND, chat_id,
                                                 user_id)
        return PendingCommand.from_json(user_id, chat_id, row.payload) if row else None

    async def prune(self) -> int:
        """Delete expired conversations; returns how many."""
        return await self._store.prune_conversations()
