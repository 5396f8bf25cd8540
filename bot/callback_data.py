"""Inline-button data: every kind is built and read here, and nowhere else.

The wire formats below are fixed: buttons already sent keep their data for as long as their
messages live, so a change here would strand them.

* ``again:<job id>``: run a job again with a new seed (:class:`Again`);
* ``up:<job id>:<result index>``: upscale one result of a job (:class:`Upscale`);
* ``pick:<command>``: an action offered under a photo sent without a caption, a
  :class:`~bot.commands.Command` value (:class:`PickAction`);
* ``pick:ls:<style>``: a style for /localstyle, a :class:`~bot.commands.LocalStyle` value
  (:class:`PickStyle`);
* ``cancel:<job id>``: cancel a job still waiting for a slot (:class:`CancelJob`);
* ``mask:use`` / ``mask:new``: /erase got a photo where a mask was awaited; use it as the mask,
  or take it as a new photo (:class:`MaskChoice`);
* ``mrun:<step>:<preview>``: the preview of a mask painted over the photo: run, redo or cancel
  (:class:`MaskPreview`); ``<preview>`` is the preview's 8 hex digits, so an older preview's
  buttons do nothing.
* ``buy:<images>:<stars>``: the pack of images to buy for Telegram Stars (:class:`BuyPack`); the
  price travels with it, so a press after STAR_PACKS changed is refused, not charged anew.

Reading is strict: numbers are plain ASCII digits with no sign, no leading zero, no ``_`` and no
spaces (``int()`` would take all of those, and full-width digits too); a job id has 1 to 12
digits (ids start at 1), a result index 1 or 2 (0 to 99). Anything else is not ours and
:func:`parse` gives ``None``. Each kind's ``PATTERN`` is anchored with ``\\A...\\Z``:
python-telegram-bot's ``CallbackQueryHandler(pattern=...)`` calls ``pattern.match(data)``, which
would otherwise accept any text that merely starts like ours (``$`` would also let a trailing
newline through).

Telegram takes at most 64 bytes of callback data. The longest data any kind can hold is
``up:`` + 12 digits + ``:`` + 2 digits, 18 ASCII bytes (the longest pick today is
``pick:ls:porcelain``, 17), so the limit holds; each ``encode`` still checks it, so a longer
command or style value added to the enums fails where the button is built, not in Telegram's
reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Self, TypeAlias

from bot.commands import Command, LocalStyle

# Telegram Bot API, InlineKeyboardButton.callback_data: "1-64 bytes".
MAX_CALLBACK_DATA_BYTES = 64
MAX_JOB_ID = 10**12 - 1  # 12 digits
MAX_RESULT_INDEX = 99  # 2 digits

# Canonical decimal forms: no leading zero (so every number has exactly one spelling).
_JOB_ID = r"[1-9][0-9]{0,11}"
_INDEX = r"0|[1-9][0-9]?"


def _alternatives(values: list[str]) -> str:
    """An alternation matching exactly one of ``values`` (longest first, each escaped)."""
    return "|".join(re.escape(value) for value in sorted(values, key=len, reverse=True))


def _pattern(body: str) -> re.Pattern[str]:
    return re.compile(rf"\A{body}\Z", re.ASCII)


def _checked(data: str) -> str:
    if len(data.encode()) > MAX_CALLBACK_DATA_BYTES:
        raise ValueError(f"callback data over {MAX_CALLBACK_DATA_BYTES} bytes: {data!r}")
    return data


def _check_int(name: str, value: int, low: int, high: int) -> None:
    # bool is an int subclass; True as a job id is a bug, not job 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


@dataclass(frozen=True)
class Again:
    """``again:<job id>``: run job ``job_id`` again with a new seed."""

    PATTERN: ClassVar[re.Pattern[str]] = _pattern(rf"again:(?P<job>{_JOB_ID})")

    job_id: int

    def __post_init__(self) -> None:
        _check_int("job_id", self.job_id, 1, MAX_JOB_ID)

    def encode(self) -> str:
        return _checked(f"again:{self.job_id}")

    @classmethod
    def parse(cls, raw: str) -> Self | None:
        match = cls.PATTERN.fullmatch(raw)
        return None if match is None else cls(int(match["job"]))


@dataclass(frozen=True)
class Upscale:
    """``up:<job id>:<result index>``: upscale result ``index`` (from 0) of job ``job_id``."""

    PATTERN: ClassVar[re.Pattern[str]] = _pattern(rf"up:(?P<job>{_JOB_ID}):(?P<index>{_INDEX})")
    # The route: any press naming a job's results, so that a press on someone else's job is
    # told so before the rest of its data is judged.
    ROUTE: ClassVar[re.Pattern[str]] = re.compile(rf"\Aup:(?P<job>{_JOB_ID})(?:\Z|:)", re.ASCII)

    job_id: int
    index: int

    def __post_init__(self) -> None:
        _check_int("job_id", self.job_id, 1, MAX_JOB_ID)
        _check_int("index", self.index, 0, MAX_RESULT_INDEX)

    def encode(self) -> str:
        return _checked(f"up:{self.job_id}:{self.index}")

    @classmethod
    def parse(cls, raw: str) -> Self | None:
        match = cls.PATTERN.fullmatch(raw)
        return None if match is None else cls(int(match["job"]), int(match["index"]))

    @classmethod
    def job_of(cls, raw: str) -> int | None:
        """The job an upscale press names, whether or not the rest of it is well formed."""
        match = cls.ROUTE.match(raw)
        return None if match is None else int(match["job"])


@dataclass(frozen=True)
class PickAction:
    """``pick:<command>``: the action chosen for a photo sent without a caption."""

    PATTERN: ClassVar[re.Pattern[str]] = _pattern(
        rf"pick:(?P<command>{_alternatives([c.value for c in Command])})"
    )

    command: Command

    def __post_init__(self) -> None:
        if not isinstance(self.command, Command):
            raise TypeError(f"command must be a Command, got {self.command!r}")

    def encode(self) -> str:
        return _checked(f"pick:{self.command.value}")

    @classmethod
    def parse(cls, raw: str) -> Self | None:
        match = cls.PATTERN.fullmatch(raw)
        return None if match is None else cls(Command(match["command"]))


@dataclass(frozen=True)
class PickStyle:
    """``pick:ls:<style>``: the style chosen for /localstyle."""

    PATTERN: ClassVar[re.Pattern[str]] = _pattern(
        rf"pick:ls:(?P<style>{_alternatives([s.value for s in LocalStyle])})"
    )

    style: LocalStyle

    def __post_init__(self) -> None:
        if not isinstance(self.style, LocalStyle):
            raise TypeError(f"style must be a LocalStyle, got {self.style!r}")

    def encode(self) -> str:
        return _checked(f"pick:ls:{self.style.value}")

    @classmethod
    def parse(cls, raw: str) -> Self | None:
        match = cls.PATTERN.fullmatch(raw)
        return None if match is None else cls(LocalStyle(match["style"]))


@dataclass(frozen=True)
class CancelJob:
    """``cancel:<job id>``: cancel a job still waiting for a slot (the ✖ on its status line)."""

    PATTERN: ClassVar[re.Pattern[str]] = _pattern(rf"cancel:(?P<job>{_JOB_ID})")

    job_id: int

    def __post_init__(self) -> None:
        _check_int("job_id", self.job_id, 1, MAX_JOB_ID)

    def encode(self) -> str:
        return _checked(f"cancel:{self.job_id}")

    @classmethod
    def parse(cls, raw: str) -> Self | None:
        match = cls.PATTERN.fullmatch(raw)
        return None if match is None else cls(int(match["job"]))


class MaskAnswer(StrEnum):
    USE = "use"  # the image is the mask after all
    NEW = "new"  # it is a new photo: stop waiting for the mask


@dataclass(frozen=True)
class MaskChoice:
    """``mask:<answer>``: what an image that does not look like a mask is (keyed by its keyboard
    message, which the conversation names)."""

    PATTERN: ClassVar[re.Pattern[str]] = _pattern(
        rf"mask:(?P<answer>{_alternatives([a.value for a in MaskAnswer])})"
    )

    answer: MaskAnswer

    def __post_init__(self) -> None:
        if not isinstance(self.answer, MaskAnswer):
            raise TypeError(f"answer must be a MaskAnswer, got {self.answer!r}")

    def encode(self) -> str:
        return _checked(f"mask:{self.answer.value}")

    @classmethod
    def parse(cls, raw: str) -> Self | None:
        match = cls.PATTERN.fullmatch(raw)
        return None if match is None else cls(MaskAnswer(match["answer"]))


class PreviewStep(StrEnum):
    RUN = "run"  # the tinted area is right: run the job (it is charged from here on)
    REDO = "redo"  # paint again: keep waiting for the mask
    CANCEL = "stop"  # drop the request


@dataclass(frozen=True)
class MaskPreview:
    """``mrun:<step>:<preview>``: a press under the preview of a painted mask."""

    PATTERN: ClassVar[re.Pattern[str]] = _pattern(
        rf"mrun:(?P<step>{_alternatives([s.value for s in PreviewStep])})"
        r":(?P<preview>[0-9a-f]{8})"
    )

    step: PreviewStep
    preview: str  # MaskCandidate.nonce

    def __post_init__(self) -> None:
        if not isinstance(self.step, PreviewStep):
            raise TypeError(f"step must be a PreviewStep, got {self.step!r}")
        if re.fullmatch(r"[0-9a-f]{8}", self.preview, re.ASCII) is None:
            raise ValueError(f"preview must be 8 hex digits, got {self.preview!r}")

    def encode(self) -> str:
        return _checked(f"mrun:{self.step.value}:{self.preview}")

    @classmethod
    def parse(cls, raw: str) -> Self | None:
        match = cls.PATTERN.fullmatch(raw)
        return None if match is None else cls(PreviewStep(match["step"]), match["preview"])


# bot/config.py bounds a pack to 100000 images and 10000 Stars: 6 and 5 digits at most.
MAX_PACK_IMAGES = 999_999
MAX_PACK_STARS = 99_999


@dataclass(frozen=True)
class BuyPack:
    """``buy:<images>:<stars>``: buy ``images`` for ``stars`` Telegram Stars (/buy's keyboard)."""

    PATTERN: ClassVar[re.Pattern[str]] = _pattern(
        r"buy:(?P<images>[1-9][0-9]{0,5}):(?P<stars>[1-9][0-9]{0,4})"
    )

    images: int
    stars: int

    def __post_init__(self) -> None:
        _check_int("images", self.images, 1, MAX_PACK_IMAGES)
        _check_int("stars", self.stars, 1, MAX_PACK_STARS)

    def encode(self) -> str:
        return _checked(f"buy:{self.images}:{self.stars}")

    @classmethod
    def parse(cls, raw: str) -> Self | None:
        match = cls.PATTERN.fullmatch(raw)
        return None if match is None else cls(int(match["images"]), int(match["stars"]))


CallbackData: TypeAlias = (
    Again | Upscale | PickAction | PickStyle | CancelJob | MaskChoice | MaskPreview | BuyPack
)

KINDS: tuple[
    type[Again], type[Upscale], type[PickAction], type[PickStyle], type[CancelJob],
    type[MaskChoice], type[MaskPreview], type[BuyPack],
] = (
    Again,
    Upscale,
    PickAction,
    PickStyle,
    CancelJob,
    MaskChoice,
    MaskPreview,
    BuyPack,
)


def parse(raw: str) -> CallbackData | None:
    """The button ``raw`` came from, or None when it is none of ours (or malformed)."""
    for kind in KINDS:
        parsed = kind.parse(raw)
        if parsed is not None:
            return parsed
    return None
