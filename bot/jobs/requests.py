"""Who asked for a job and what it asks for: the records every stage of the pipeline shares."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bot.commands import ParsedCommand
from bot.texts import Lang
from storage.models import Job


@dataclass(frozen=True)
class Requester:
    """Who asked, where, and how to talk to them."""

    user_id: int
    chat_id: int
    message_id: int
    lang: Lang
    is_admin: bool
    is_group: bool = False
    # The Telegram update that asked (a message, a mask, a button press): Telegram may send it
    # again, and one update makes at most one job. None: no update behind the request.
    update_id: int | None = None


@dataclass(frozen=True)
class AlbumImage:
    """One image of an album and the update that brought it (its job is keyed by it)."""

    file_id: str
    update_id: int | None


@dataclass(frozen=True)
class JobSpec:
    """The parsed request a job runs and the language its messages are in."""

    parsed: ParsedCommand
    lang: Lang

    def to_json(self) -> str:
        return json.dumps({"parsed": self.parsed.to_json(), "lang": self.lang.value})

    @classmethod
    def of(cls, job: Job) -> JobSpec:
        data = json.loads(job.spec_json)
        lang = data.get("lang")
        return cls(ParsedCommand.from_json(data["parsed"]),
                   Lang(lang) if lang in ("zh", "en") else Lang.EN)


@dataclass(frozen=True)
class Accepted:
    job: Job
    status_message_id: int | None  # None when the status line could not be sent
    # True: the update was sent again and already had this job; nothing was reserved or answered.
    replayed: bool = False


@dataclass(frozen=True)
class Refused:
    """The request was answered with an explanation; nothing was reserved."""

    message: str


AcceptResult = Accepted | Refused
