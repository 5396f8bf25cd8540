"""Command texts (a photo's caption or a reply) turned into typed requests; no Telegram here.

Grammar: ``/name[@bot] words and key=value options, in any order``.

* The command token ends at whitespace, at the end of the text or at a non-ASCII character
  (``/edit把天空变红`` works, as Telegram ends the command entity there too); names and option
  keys are case-insensitive; ``＝`` works like ``=``, and full-width digits in values are fine.
* Options are whitespace-separated ``key=value`` tokens whose key is one of the option names
  below (any command's, ASCII case-insensitive, or a Chinese alias); any other word, ``E=mc2``
  included, belongs to the prompt. An option that another command takes but this one does not
  is an error naming it (``n=`` on /edit is a mistake worth telling, not prompt text). Chinese
  aliases: 数量= 种子= 强度= 反向= 比例= 倍数= 线稿= 上= 下= 左= 右= 全部= 框=.
* A value may be quoted to hold spaces: ``neg="blurry, dark"``, ``neg=“blurry, dark”`` or
  ``neg=「blurry, dark」`` (also 『』). A quote left open is an error.
* The negative prompt of ``/edit`` (the only command whose model takes one) is given either with
  ``neg=`` or as everything after a standalone ``--``: ``/edit make it red -- blurry, dark``.
  Both at once is a duplicate option. ``/edit`` takes no ``n=``/``seed=`` (qwen-image-edit makes
  one image per call and has no seed); the wanx commands take ``n=1..4`` and ``seed=``.
* The prompt is the remaining words in their order, joined by single spaces; a line break between
  two words is kept as one newline. Control characters other than newline are dropped (tabs and
  other whitespace controls separate words). A word of only invisible format characters (U+200B
  and the like) is no word, so a prompt of them is empty; zero-width characters at a word's
  edges are dropped, inside it (emoji ZWJ sequences) kept. Lengths are ``len()`` of the
  normalised text: prompt <= 800, negative prompt <= 500.
* ``/expand`` and ``/upscale`` read a bare number only as the FIRST word of the prompt
  (``/expand 1.5 a beach``; ``1.5x``, ``x1.5``, ``×1.5`` and ``1.5倍`` also work), so a number
  inside a description ("two dogs, 2 cats") is never taken for a factor. The same as options:
  ``scale=`` (all four sides) and ``factor=``. /expand takes exactly one of: a number,
  ``top= bottom= left= right=`` (unset sides 1.0), or ``ratio=W:H`` (kept as a pair). Errors
  name what the user typed: the command for a bare number (``/upscale takes 1–4``), else the
  key as written.
* ``/localstyle`` reads a style name (Chinese, English or alias) from the first word(s); the rest
  says what to restyle. No style named is not an error: ``style`` is ``None`` and the caller offers
  the eight as buttons, then calls :meth:`ParsedCommand.with_style`. When a first word that is
  no style is followed by more words (``/localstyle lego the cup``) it was meant as one: it is
  kept in ``unknown_style`` for the caller to name, and the rest is the subject. The prompt sent
  follows the reference's tip ("把房子变成冰雕风格"), so its limit is 800 minus that wrapping.
* ``/erase`` takes ``box=x1,y1,x2,y2`` (percent of the width and height, left-top to
  right-bottom; ``框=`` ``区域=`` too), the one option that may repeat: the regions are the
  mask, so no mask is asked for. At most :data:`MAX_BOXES`; errors show a box example.
* Errors carry the command, so the example shown beside them (catalogue ``example_<command>``)
  is in the reader's language.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Concatenate, ParamSpec, TypeVar

from bot.api_limits import (
    EXPAND_SCALE_RANGE,
    MAX_NEGATIVE_PROMPT_CHARS,
    MAX_PROMPT_CHARS,
    N_RANGE,
    SEED_RANGE,
    STRENGTH_RANGE,
    UPSCALE_FACTOR_RANGE,
)
from bot.bailian.models import EditParameters, EditRequest, Function, Model
from bot.errors import BoxParseError, CommandParseError
from bot.masks import Box

# The API's limits (bot.api_limits) under the names this module has always exported.
PROMPT_MAX_CHARS = MAX_PROMPT_CHARS
NEGATIVE_MAX_CHARS = MAX_NEGATIVE_PROMPT_CHARS
# Ours, not the API's (whose default is 1, which only sharpens): /upscale alone doubles the size.
DEFAULT_UPSCALE_FACTOR = 2
# Ratio terms beyond this are typos, not aspect ratios; keeps the numbers small for the caller.
RATIO_TERM_MAX = 9999
# User values echoed back in error messages are cut here so a pasted essay stays a short reply.
ECHO_MAX_CHARS = 40


class Command(StrEnum):
    EDIT = "edit"
    STYLE = "style"
    LOCALSTYLE = "localstyle"
    INSTRUCT = "instruct"
    ERASE = "erase"
    DEWATERMARK = "dewatermark"
    EXPAND = "expand"
    UPSCALE = "upscale"
    COLORIZE = "colorize"
    SKETCH = "sketch"
    CARTOON = "cartoon"


class LocalStyle(StrEnum):
    """The eight styles of stylization_local; values are short ids (fit callback data)."""

    ICE = "ice"
    CLOUD = "cloud"
    LANTERN = "lantern"
    WOODEN = "wooden"
    PORCELAIN = "porcelain"
    FLUFFY = "fluffy"
    WEAVING = "weaving"
    BALLOON = "balloon"

    @property
    def zh(self) -> str:
        return _STYLE_NAMES[self][0]

    @property
    def en(self) -> str:
        """The English name as the API reference spells it."""
        return _STYLE_NAMES[self][1]

    def label(self, lang: str) -> str:
        """The name to show on a button: Chinese for "zh", else English words (not the API's
        spelling: "Festive lantern", not "chinese festive lantern")."""
        return self.zh if lang == "zh" else _STYLE_NAMES[self][2]

    @classmethod
    def lookup(cls, name: str) -> LocalStyle | None:
        """A style from its Chinese or English name, id or alias (case-insensitive), or None."""
        key = " ".join(name.casefold().split())
        for suffix in ("风格", " style"):
            if key.endswith(suffix) and len(key) > len(suffix):
                key = key[: -len(suffix)].rstrip()
                break
        return _STYLE_LOOKUP.get(key)


# Chinese name, English name as the API reference spells it, English button label.
_STYLE_NAMES: dict[LocalStyle, tuple[str, str, str]] = {
    LocalStyle.ICE: ("冰雕", "ice", "Ice"),
    LocalStyle.CLOUD: ("云朵", "cloud", "Cloud"),
    LocalStyle.LANTERN: ("花灯", "chinese festive lantern", "Festive lantern"),
    LocalStyle.WOODEN: ("木板", "wooden", "Wood"),
    LocalStyle.PORCELAIN: ("青花瓷", "blue and white porcelain", "Blue-and-white porcelain"),
    LocalStyle.FLUFFY: ("毛茸茸", "fluffy", "Fluffy"),
    LocalStyle.WEAVING: ("毛线", "weaving", "Knitted"),
    LocalStyle.BALLOON: ("气球", "balloon", "Balloon"),
}
_STYLE_LOOKUP: dict[str, LocalStyle] = {
    **{style.value: style for style in LocalStyle},
    **{names[0]: style for style, names in _STYLE_NAMES.items()},
    **{names[1]: style for style, names in _STYLE_NAMES.items()},
    **{names[2].casefold(): style for style, names in _STYLE_NAMES.items()},
    "festive lantern": LocalStyle.LANTERN,
    "blue-and-white porcelain": LocalStyle.PORCELAIN,
    "wood": LocalStyle.WOODEN,
    "wool": LocalStyle.WEAVING,
    "knitted": LocalStyle.WEAVING,
    "yarn": LocalStyle.WEAVING,
    "clouds": LocalStyle.CLOUD,
}
# Longest style name in words, so the first words of a prompt are tried longest first.
_STYLE_MAX_WORDS = max(len(name.split()) for name in _STYLE_LOOKUP)


# --- specs -------------------------------------------------------------------------------------

_WANX_COMMON = frozenset({"n", "seed"})


@dataclass(frozen=True)
class CommandSpec:
    command: Command
    model: Model
    function: Function | None
    prompt_required: bool
    default_prompt: str
    options: frozenset[str]

    @property
    def usage_key(self) -> str:
        """Catalogue key of this command's usage (help) text."""
        return f"cmd_usage_{self.command.value}"

    @property
    def example_key(self) -> str:
        """Catalogue key of a command line that works, in each language."""
        return f"example_{self.command.value}"


def _wanx(
    command: Command,
    function: Function,
    *,
    prompt_required: bool,
    default_prompt: str = "",
    extra: frozenset[str] = frozenset(),
) -> CommandSpec:
    return CommandSpec(
        command=command,
        model=Model.WANX_IMAGE_EDIT,
        function=function,
        prompt_required=prompt_required,
        default_prompt=default_prompt,
        options=_WANX_COMMON | extra,
    )


SPECS: dict[Command, CommandSpec] = {
    # qwen-image-edit takes neither n nor seed (one synchronous image per call), so /edit offers
    # only neg=: accepting n= or seed= there would promise something the model cannot do.
    Command.EDIT: CommandSpec(
        command=Command.EDIT,
        model=Model.QWEN_IMAGE_EDIT,
        function=None,
        prompt_required=True,
        default_prompt="",
        options=frozenset({"neg"}),
    ),
    Command.STYLE: _wanx(
        Command.STYLE,
        Function.STYLIZATION_ALL,
        prompt_required=True,
        extra=frozenset({"strength"}),
    ),
    Command.LOCALSTYLE: _wanx(
        Command.LOCALSTYLE,
        Function.STYLIZATION_LOCAL,
        prompt_required=False,
    ),
    Command.INSTRUCT: _wanx(
        Command.INSTRUCT,
        Function.DESCRIPTION_EDIT,
        prompt_required=True,
        extra=frozenset({"strength"}),
    ),
    # box= names the regions to repaint instead of a mask image (several box= for several).
    Command.ERASE: _wanx(
        Command.ERASE,
        Function.DESCRIPTION_EDIT_WITH_MASK,
        prompt_required=False,
        extra=frozenset({"box"}),
    ),
    Command.DEWATERMARK: _wanx(
        Command.DEWATERMARK,
        Function.REMOVE_WATERMARK,
        prompt_required=False,
        default_prompt="去除图像中的文字和水印",
    ),
    # The reference lists expand's prompt as required and asks for a description of the whole
    # scene; an empty one is replaced by a neutral description rather than refused.
    Command.EXPAND: _wanx(
        Command.EXPAND,
        Function.EXPAND,
        prompt_required=False,
        default_prompt="自然延伸画面内容，保持原图风格",
        extra=frozenset({"scale", "top", "bottom", "left", "right", "ratio"}),
    ),
    Command.UPSCALE: _wanx(
        Command.UPSCALE,
        Function.SUPER_RESOLUTION,
        prompt_required=False,
        default_prompt="图像超分",
        extra=frozenset({"factor"}),
    ),
    # "自动上色" in the reference means a prompt naming no colours, not an empty one.
    Command.COLORIZE: _wanx(
        Command.COLORIZE,
        Function.COLORIZATION,
        prompt_required=False,
        default_prompt="为黑白图像自然上色，色彩真实",
    ),
    Command.SKETCH: _wanx(
        Command.SKETCH,
        Function.DOODLE,
        prompt_required=True,
        extra=frozenset({"sketch"}),
    ),
    Command.CARTOON: _wanx(
        Command.CARTOON,
        Function.CONTROL_CARTOON_FEATURE,
        prompt_required=True,
    ),
}

# Canonical option names in the order they are listed to users.
OPTION_ORDER = (
    "neg",
    "n",
    "seed",
    "strength",
    "scale",
    "top",
    "bottom",
    "left",
    "right",
    "ratio",
    "factor",
    "sketch",
    "box",
)
_OPTION_ALIASES: dict[str, str] = {
    **{name: name for name in OPTION_ORDER},
    "negative": "neg",
    "negative_prompt": "neg",
    "反向": "neg",
    "数量": "n",
    "种子": "seed",
    "强度": "strength",
    "全部": "scale",
    "上": "top",
    "下": "bottom",
    "左": "left",
    "右": "right",
    "比例": "ratio",
    "upscale_factor": "factor",
    "倍数": "factor",
    "is_sketch": "sketch",
    "线稿": "sketch",
    "框": "box",
    "区域": "box",
}
_SIDES = ("top", "bottom", "left", "right")

_TRUE = frozenset({"yes", "true", "1", "on", "y", "是"})
_FALSE = frozenset({"no", "false", "0", "off", "n", "否"})


# --- the parsed command ------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedCommand:
    """A command's request, before images are attached; stored with the job as JSON."""

    command: Command
    prompt: str
    negative_prompt: str | None = None
    n: int = 1
    seed: int | None = None
    strength: float | None = None
    scales: tuple[float, float, float, float] | None = None  # top, bottom, left, right
    ratio: tuple[int, int] | None = None
    upscale_factor: int | None = None
    is_sketch: bool | None = None
    style: LocalStyle | None = None
    # /localstyle: the first word, meant as a style, that is none of the eight (for the message)
    unknown_style: str | None = None
    # /erase: regions to repaint given with box= (the mask is drawn from them), in order typed
    boxes: tuple[Box, ...] = ()

    @property
    def spec(self) -> CommandSpec:
        return SPECS[self.command]

    def to_json(self) -> str:
        return json.dumps(
            {
                "command": self.command.value,
                "prompt": self.prompt,
                "negative_prompt": self.negative_prompt,
                "n": self.n,
                "seed": self.seed,
                "strength": self.strength,
                "scales": list(self.scales) if self.scales is not None else None,
                "ratio": list(self.ratio) if self.ratio is not None else None,
                "upscale_factor": self.upscale_factor,
                "is_sketch": self.is_sketch,
                "style": self.style.value if self.style is not None else None,
                "unknown_style": self.unknown_style,
                "boxes": [[b.x1, b.y1, b.x2, b.y2] for b in self.boxes],
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, s: str) -> ParsedCommand:
        data = json.loads(s)
        scales = data.get("scales")
        ratio = data.get("ratio")
        style = data.get("style")
        strength = data.get("strength")
        return cls(
            command=Command(data["command"]),
            prompt=str(data["prompt"]),
            negative_prompt=data.get("negative_prompt"),
            n=int(data.get("n", 1)),
            seed=data.get("seed"),
            strength=float(strength) if strength is not None else None,
            scales=(
                (float(scales[0]), float(scales[1]), float(scales[2]), float(scales[3]))
                if scales is not None
                else None
            ),
            ratio=(int(ratio[0]), int(ratio[1])) if ratio is not None else None,
            upscale_factor=data.get("upscale_factor"),
            is_sketch=data.get("is_sketch"),
            style=LocalStyle(style) if style is not None else None,
            unknown_style=data.get("unknown_style"),
            boxes=tuple(Box(*(float(v) for v in box)) for box in data.get("boxes") or ()),
        )

    def with_seed(self, seed: int) -> ParsedCommand:
        return replace(self, seed=seed)

    def with_style(self, style: LocalStyle) -> ParsedCommand:
        """The /localstyle request once the user picked a style from the keyboard."""
        return replace(self, style=style, unknown_style=None)

    @property
    def request_prompt(self) -> str:
        """The prompt sent: the default when empty; for /localstyle, with the style in it."""
        if self.command is Command.LOCALSTYLE:
            if self.style is None:
                raise CommandParseError("cmd_error_style_required", self.command.value)
            return localstyle_prompt(self.style, self.prompt)
        return self.prompt or self.spec.default_prompt


def localstyle_prompt(style: LocalStyle, subject: str) -> str:
    """The reference's tip for stylization_local, "把xx变成xx风格", in the subject's language."""
    if style.zh in subject or re.search(rf"\b{style.en}\b", subject, re.IGNORECASE):
        return subject  # the user already wrote the style into the sentence
    if not subject:
        return f"把画面主体变成{style.zh}风格"
    if _has_cjk(subject):
        return f"把{subject}变成{style.zh}风格"
    return f"turn {subject} into {style.en} style"


def _has_cjk(s: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" for ch in s)


# The longest wrapping localstyle_prompt adds around a subject; its limit is checked with it.
_LOCALSTYLE_OVERHEAD = max(len(localstyle_prompt(style, "x")) - 1 for style in LocalStyle)


# --- recognising a command ---------------------------------------------------------------------

_COMMAND_RE = re.compile(r"/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]{1,64}))?")


def _match_command(text: str) -> tuple[str, str | None, str] | None:
    """(lower-cased name, addressed bot or None, rest of the text) when ``text`` is a command."""
    stripped = text.lstrip()
    match = _COMMAND_RE.match(stripped)
    if match is None:
        return None
    rest = stripped[match.end() :]
    if rest and (rest[0] == "@" or (rest[0].isascii() and not rest[0].isspace())):
        return None  # "/edit-x", "/edit@", "/edit@bot.x": not a command token
    return match.group(1).lower(), match.group(2), rest


def _addressed_to_us(target: str | None, bot_username: str) -> bool:
    return target is None or target.casefold() == bot_username.lstrip("@").casefold()


def is_command(text: str, bot_username: str | None = None) -> bool:
    """Whether ``text`` starts with any ``/command``; with a username, only ones for this bot."""
    matched = _match_command(text)
    if matched is None:
        return False
    return bot_username is None or _addressed_to_us(matched[1], bot_username)


def command_name(text: str) -> str | None:
    """The lower-cased name of the command ``text`` starts with (known or not), or None."""
    matched = _match_command(text)
    return matched[0] if matched else None


def split_command(text: str, bot_username: str) -> tuple[Command, str] | None:
    """(command, the text after it) for one of our commands addressed to us, else None."""
    matched = _match_command(text)
    if matched is None:
        return None
    name, target, rest = matched
    if not _addressed_to_us(target, bot_username):
        return None
    try:
        command = Command(name)
    except ValueError:
        return None
    return command, rest.strip()


# Everyone's commands besides the edits (bot/app.py registers them); admin commands are not
# suggested to people who cannot use them.
INFO_COMMANDS = ("start", "help", "quota", "lang", "cancel", "id")
KNOWN_COMMANDS = (*(c.value for c in Command), *INFO_COMMANDS)
# A typo this many edits away (a swap of two letters counts as one) still names a command.
SUGGEST_MAX_DISTANCE = 2
# A prefix shorter than this (``/c``) could mean too many commands to name one.
SUGGEST_MIN_PREFIX = 3


def _edit_distance(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) turning ``a`` into ``b``."""
    before: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if before is not None and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, before[j - 2] + 1)
            current.append(cost)
        before, previous = previous, current
    return previous[-1]


def suggest_command(name: str, known: tuple[str, ...] = KNOWN_COMMANDS) -> str | None:
    """The known command an unknown ``name`` most likely meant (``stlye`` → ``style``), or None.

    Close means within two edits (and fewer edits than letters typed), or one being the other's
    start (``/upscal``, ``/helpme``) with at least three letters in common. The closest wins;
    of equals, the first in ``known``.
    """
    name = name.lower().lstrip("/")
    if not name or name in known:
        return None
    best: tuple[int, int, str] | None = None
    for order, candidate in enumerate(known):
        distance = _edit_distance(name, candidate)
        prefix = min(len(name), len(candidate)) >= SUGGEST_MIN_PREFIX and (
            candidate.startswith(name) or name.startswith(candidate)
        )
        if prefix:
            distance = min(distance, 1)
        elif distance > SUGGEST_MAX_DISTANCE or distance >= len(name):
            continue
        if best is None or (distance, order) < best[:2]:
            best = (distance, order, candidate)
    return best[2] if best else None


# --- tokens ------------------------------------------------------------------------------------

# A key of ASCII (or full-width) letters/underscores, or of Chinese characters, then = or ＝.
_OPTION_RE = re.compile(r"([A-Za-z_\uFF21-\uFF3A\uFF41-\uFF5A\uFF3F]+|[\u3400-\u9fff]+)[=＝]")
_CLOSING_QUOTES: dict[str, str] = {
    '"': '"',
    "“": "”“",  # phones mix up curly quotes: either one closes
    "”": "”“",
    "「": "」",
    "『": "』",
}


@dataclass(frozen=True)
class _Word:
    text: str
    newline_before: bool


@dataclass(frozen=True)
class _Option:
    key: str  # NFKC and lower-cased, for lookup
    typed: str  # as the user wrote it, for messages ("/expand" for a bare number)
    value: str
    bare: str | None = None  # the word as typed, when the value is a bare number

    @property
    def shown(self) -> str:
        """How the user wrote this option: ``1.5x`` or ``top=``."""
        return self.bare if self.bare is not None else f"{self.typed}="


@dataclass(frozen=True)
class _Tokens:
    words: list[_Word]
    options: list[_Option]
    after_separator: str | None  # the text after a standalone "--"


def _normalise(text: str) -> str:
    """Line breaks to "\\n", whitespace controls to spaces, other control characters dropped;
    invisible words dropped and zero-width characters trimmed off words (:func:`_visible`)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for ch in text:
        if ch == "\n" or unicodedata.category(ch) != "Cc":
            out.append(ch)
        elif ch.isspace():
            out.append(" ")
    return _WORD_RE.sub(lambda match: _visible(match.group()), "".join(out))


# Not whitespace to Python, so a prompt of only these would look like words to the tokeniser.
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u180e"
_WORD_RE = re.compile(r"\S+")


def _visible(word: str) -> str:
    """``word`` as the model should see it: "" when it is only format characters (category Cf:
    zero-width spaces and joiners, BOM, bidi marks, ...), else without zero-width characters at
    its edges. Inside a word they stay (an emoji's ZWJ sequence, ZWNJ in Persian), and so do
    bidi marks and emoji tag characters at its edges (an RTL word's direction, a flag)."""
    if all(unicodedata.category(ch) == "Cf" for ch in word):
        return ""
    return word.strip(_ZERO_WIDTH)


def _tokenise(rest: str, command: Command) -> _Tokens:
    """Words, options (``key=value`` with a key that is an option name) and the ``--`` tail."""
    words: list[_Word] = []
    options: list[_Option] = []
    after_separator: str | None = None
    newline = False
    i, end = 0, len(rest)
    while i < end:
        ch = rest[i]
        if ch.isspace():
            newline = newline or ch == "\n"
            i += 1
            continue
        j = i
        while j < end and not rest[j].isspace():
            j += 1
        token = rest[i:j]
        if token == "--":
            after_separator = rest[j:]
            break
        if token[0] in "=＝" and len(token) > 1 and token[1] not in "=＝":
            raise CommandParseError(
                "cmd_error_option_without_name", command.value, value=_echo(token)
            )
        match = _OPTION_RE.match(token)
        key = unicodedata.normalize("NFKC", match.group(1)).lower() if match else ""
        if match is None or key not in _OPTION_ALIASES:
            words.append(_Word(token, newline))  # "E=mc2" is prompt text
            newline = False
            i = j
            continue
        value_start = i + match.end()
        closers = _CLOSING_QUOTES.get(rest[value_start]) if value_start < end else None
        if closers is None:
            options.append(_Option(key, match.group(1), token[match.end() :]))
            i = j
            continue
        close = next((k for k in range(value_start + 1, end) if rest[k] in closers), None)
        if close is None:
            raise CommandParseError(
                "cmd_error_unclosed_quote", command.value, option=match.group(1)
            )
        options.append(_Option(key, match.group(1), rest[value_start + 1 : close]))
        i = close + 1
    return _Tokens(words, options, after_separator)


def _join_words(words: list[_Word]) -> str:
    parts: list[str] = []
    for index, word in enumerate(words):
        if index:
            parts.append("\n" if word.newline_before else " ")
        parts.append(word.text)
    return "".join(parts)


def _echo(value: str) -> str:
    return value if len(value) <= ECHO_MAX_CHARS else value[: ECHO_MAX_CHARS - 1] + "…"


# --- values ------------------------------------------------------------------------------------

_INT_RE = re.compile(r"[+-]?\d+")
_DECIMAL_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")
_BARE_NUMBER_RE = re.compile(r"(?:[x×])?([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:[x×倍])?", re.IGNORECASE)
_RATIO_RE = re.compile(r"(\d+)\s*[:x×/]\s*(\d+)", re.IGNORECASE)


class _Values:
    """Parses option values for one command, raising errors that carry the command."""

    def __init__(self, command: Command) -> None:
        self.command = command

    def fail(self, key: str, **params: object) -> CommandParseError:
        return CommandParseError(key, self.command.value, **params)

    def integer(self, option: str, raw: str, low: int, high: int) -> int:
        value = unicodedata.normalize("NFKC", raw).strip()
        if not _INT_RE.fullmatch(value):
            raise self.fail(
                "cmd_error_bad_integer", option=option, value=_echo(raw), expected=f"{low}–{high}"
            )
        # Compare digit counts first: int() refuses strings of thousands of digits outright.
        digits = value.lstrip("+-").lstrip("0") or "0"
        sign = -1 if value.startswith("-") else 1
        number = sign * int(digits) if len(digits) <= 18 else None
        if number is None or not low <= number <= high:
            raise self.fail(
                "cmd_error_out_of_range_integer",
                option=option,
                value=_echo(raw),
                low=low,
                high=high,
            )
        return number

    def decimal(self, option: str, raw: str, low: float, high: float) -> float:
        value = unicodedata.normalize("NFKC", raw).strip()
        # Plain decimals only: "nan", "inf" and exponents ("1e999") are never numbers here.
        if not _DECIMAL_RE.fullmatch(value):
            raise self.fail(
                "cmd_error_bad_number", option=option, value=_echo(raw), expected=f"{low}–{high}"
            )
        number = float(value)  # hundreds of digits become inf, which the range check refuses
        if not (math.isfinite(number) and low <= number <= high):
            raise self.fail(
                "cmd_error_out_of_range_number",
                option=option,
                value=_echo(raw),
                low=low,
                high=high,
            )
        return number

    def boolean(self, option: str, raw: str) -> bool:
        value = unicodedata.normalize("NFKC", raw).strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise self.fail("cmd_error_bad_bool", option=option, value=_echo(raw), expected="yes/no")

    def ratio(self, option: str, raw: str) -> tuple[int, int]:
        match = _RATIO_RE.fullmatch(unicodedata.normalize("NFKC", raw).strip())
        if match is not None and all(len(g.lstrip("0")) <= 4 for g in match.groups()):
            width, height = int(match.group(1)), int(match.group(2))
            if 1 <= width <= RATIO_TERM_MAX and 1 <= height <= RATIO_TERM_MAX:
                return width, height
        raise self.fail("cmd_error_bad_ratio", option=option, value=_echo(raw))

    def text(self, option: str, raw: str) -> str | None:
        value = " ".join(visible for word in raw.split() if (visible := _visible(word)))
        if len(value) > MAX_NEGATIVE_PROMPT_CHARS:
            raise self.fail(
                "cmd_error_negative_too_long", length=len(value), limit=MAX_NEGATIVE_PROMPT_CHARS
            )
        return value or None


def _bare_number(word: str) -> str | None:
    match = _BARE_NUMBER_RE.fullmatch(unicodedata.normalize("NFKC", word))
    return match.group(1) if match else None


# --- parsing -----------------------------------------------------------------------------------


def parse_command(text: str, bot_username: str) -> ParsedCommand | None:
    """The request in ``text``; None when it is not one of our commands addressed to us.

    Raises CommandParseError (key, command, **params) for anything wrong in it.
    """
    split = split_command(text, bot_username)
    if split is None:
        return None
    command, rest = split
    spec = SPECS[command]
    values = _Values(command)
    tokens = _tokenise(_normalise(rest), command)
    options, box_options = _collect_options(tokens, spec, values)
    words = _take_bare_number(command, list(tokens.words), options, values)
    style: LocalStyle | None = None
    unknown_style: str | None = None
    if command is Command.LOCALSTYLE:
        style, unknown_style, words = _take_style(words)
    prompt = _checked_prompt(spec, _join_words(words), values)
    parsed = _read_options(spec, prompt, style, options, values)
    if box_options:
        parsed = replace(parsed, boxes=_read_boxes(box_options, values))
    return replace(parsed, unknown_style=unknown_style) if unknown_style else parsed


# More regions than this is a mask's job (or a typo loop); the message says how to draw one.
MAX_BOXES = 8
_BOX_RE = re.compile(r"\s*,\s*".join([r"(\d+(?:\.\d*)?|\.\d+)"] * 4))


def _read_boxes(options: list[_Option], values: _Values) -> tuple[Box, ...]:
    """``box=x1,y1,x2,y2`` in percent of the width and height, left-top to right-bottom."""
    if len(options) > MAX_BOXES:
        raise BoxParseError("cmd_error_too_many_boxes", values.command.value,
                            count=len(options), limit=MAX_BOXES)
    boxes = []
    for option in options:
        raw = unicodedata.normalize("NFKC", option.value).strip().replace("、", ",")
        match = _BOX_RE.fullmatch(raw)
        numbers = [float(group) for group in match.groups()] if match else []
        if (not numbers or any(n > 100 for n in numbers)
                or numbers[0] >= numbers[2] or numbers[1] >= numbers[3]):
            raise BoxParseError("cmd_error_bad_box", values.command.value,
                                option=option.typed, value=_echo(option.value))
        boxes.append(Box(*numbers))
    return tuple(boxes)


def _collect_options(
    tokens: _Tokens, spec: CommandSpec, values: _Values
) -> tuple[dict[str, _Option], list[_Option]]:
    """The options by canonical name, a ``--`` tail as ``neg``; ones this command does not take
    (another command's) or repeated ones fail, except ``box=``, which may repeat (returned
    apart, in the order typed).

    Each option keeps the key as typed (``_Option.typed``), which error messages name.
    """
    command = spec.command
    found: dict[str, _Option] = {}
    boxes: list[_Option] = []
    for option in tokens.options:
        canonical = _OPTION_ALIASES[option.key]  # the tokeniser keeps only option names
        if canonical not in spec.options:
            if canonical == "neg":
                raise values.fail(
                    "cmd_error_negative_not_supported", option=option.typed, command=command.value
                )
            if command is Command.EDIT and canonical in _WANX_COMMON:
                raise values.fail("cmd_error_edit_one_image", option=option.typed)
            raise values.fail(
                "cmd_error_unknown_option",
                option=option.typed,
                allowed=_allowed(spec),
                command=command.value,
            )
        if canonical == "box":
            boxes.append(option)
            continue
        if canonical in found:
            raise values.fail("cmd_error_duplicate_option", option=option.typed)
        found[canonical] = option
    if tokens.after_separator is not None:
        if "neg" not in spec.options:
            raise values.fail(
                "cmd_error_negative_not_supported", option="--", command=command.value
            )
        if "neg" in found:
            raise values.fail("cmd_error_duplicate_option", option="neg")
        found["neg"] = _Option("--", "--", tokens.after_separator)
    return found, boxes


# The option a bare number as the first word stands for (see the module docstring).
_BARE_NUMBER_OPTION: dict[Command, str] = {Command.EXPAND: "scale", Command.UPSCALE: "factor"}


def _take_bare_number(
    command: Command, words: list[_Word], options: dict[str, _Option], values: _Values
) -> list[_Word]:
    """The words left once a leading number is moved into ``options`` (/expand, /upscale)."""
    name = _BARE_NUMBER_OPTION.get(command)
    if name is None or not words or (number := _bare_number(words[0].text)) is None:
        return words
    if name in options:
        raise values.fail("cmd_error_duplicate_option", option=options[name].typed)
    # The user never saw the option's name: errors about the number name the command.
    options[name] = _Option(name, f"/{command.value}", number, bare=words[0].text)
    return words[1:]


def _checked_prompt(spec: CommandSpec, prompt: str, values: _Values) -> str:
    """``prompt``, refused when over the API's length or missing where the command needs one.

    /localstyle's limit is the API's less the wrapping :func:`localstyle_prompt` adds.
    """
    limit = MAX_PROMPT_CHARS
    if spec.command is Command.LOCALSTYLE:
        limit -= _LOCALSTYLE_OVERHEAD
    if len(prompt) > limit:
        raise values.fail("cmd_error_prompt_too_long", length=len(prompt), limit=limit)
    if spec.prompt_required and not prompt:
        raise values.fail("cmd_error_prompt_required", command=spec.command.value)
    return prompt


def _read_options(
    spec: CommandSpec,
    prompt: str,
    style: LocalStyle | None,
    options: dict[str, _Option],
    values: _Values,
) -> ParsedCommand:
    """The typed request: each option's value read and range-checked, defaults filled in.

    Values are read in a fixed order, so with several bad ones the error reported does not
    depend on the order the user typed them in.
    """

    n = _read(options.get("n"), values.integer, *N_RANGE)
    seed = _read(options.get("seed"), values.integer, *SEED_RANGE)
    strength = _read(options.get("strength"), values.decimal, *STRENGTH_RANGE)
    negative = _read(options.get("neg"), values.text)
    upscale_factor = _read(options.get("factor"), values.integer, *UPSCALE_FACTOR_RANGE)
    if upscale_factor is None and spec.command is Command.UPSCALE:
        upscale_factor = DEFAULT_UPSCALE_FACTOR
    is_sketch = _read(options.get("sketch"), values.boolean)
    scales: tuple[float, float, float, float] | None = None
    ratio: tuple[int, int] | None = None
    if spec.command is Command.EXPAND:
        scales, ratio = _expand(values, options)
    return ParsedCommand(
        command=spec.command,
        prompt=prompt,
        negative_prompt=negative,
        n=n if n is not None else 1,
        seed=seed,
        strength=strength,
        scales=scales,
        ratio=ratio,
        upscale_factor=upscale_factor,
        is_sketch=is_sketch,
        style=style,
    )


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _read(
    option: _Option | None,
    reader: Callable[Concatenate[str, str, _P], _T],
    *args: _P.args,
    **kwargs: _P.kwargs,
) -> _T | None:
    """``reader(key as typed, value, ...)`` for a given option; None when it was not given."""
    return None if option is None else reader(option.typed, option.value, *args, **kwargs)


def _allowed(spec: CommandSpec) -> str:
    return ", ".join(name for name in OPTION_ORDER if name in spec.options)


# Words that start a subject or an instruction, never meant as a style name.
_NOT_A_STYLE = frozenset(
    {"a", "an", "the", "my", "our", "your", "his", "her", "its", "their", "this", "that",
     "these", "those", "make", "turn", "change", "please"}
)


def _take_style(words: list[_Word]) -> tuple[LocalStyle | None, str | None, list[_Word]]:
    """The style named by the first word(s), longest name first, or the first word when it was
    meant as one and is none (more words follow it); and the words after it."""
    for count in range(min(_STYLE_MAX_WORDS, len(words)), 0, -1):
        style = LocalStyle.lookup(" ".join(word.text for word in words[:count]))
        if style is not None:
            return style, None, _without_first(words, count)
    if len(words) > 1 and words[0].text.casefold() not in _NOT_A_STYLE:
        return None, _echo(words[0].text), _without_first(words, 1)
    return None, None, words


def _without_first(words: list[_Word], count: int) -> list[_Word]:
    rest = words[count:]
    if rest:  # the first remaining word starts the prompt: no line break before it
        rest[0] = _Word(rest[0].text, newline_before=False)
    return rest


def _expand(
    values: _Values, options: dict[str, _Option]
) -> tuple[tuple[float, float, float, float] | None, tuple[int, int] | None]:
    """/expand's scales or ratio: one number, or sides, or a ratio; never two of those."""
    sides = [side for side in _SIDES if side in options]
    forms: list[str] = [name for name in ("scale", "ratio") if name in options]
    if sides:
        forms.append(sides[0])
    if len(forms) > 1:
        raise values.fail(
            "cmd_error_expand_conflict",
            first=_echo(options[forms[0]].shown),
            second=_echo(options[forms[1]].shown),
        )
    if "ratio" in options:
        return None, values.ratio(options["ratio"].typed, options["ratio"].value)

    def scale_of(name: str) -> float:
        return values.decimal(options[name].typed, options[name].value, *EXPAND_SCALE_RANGE)

    if "scale" in options:
        scale = scale_of("scale")
        scales = (scale, scale, scale, scale)
    else:
        top, bottom, left, right = (scale_of(side) if side in options else 1.0 for side in _SIDES)
        scales = (top, bottom, left, right)
    if max(scales) <= EXPAND_SCALE_RANGE[0]:
        raise values.fail("cmd_error_expand_nothing")
    return scales, None


# --- to the API --------------------------------------------------------------------------------


def build_edit_request(
    parsed: ParsedCommand,
    base_image: str,
    mask_image: str | None = None,
    scales: tuple[float, float, float, float] | None = None,
) -> EditRequest:
    """The API request for ``parsed``: only the parameters its function takes.

    ``scales`` overrides ``parsed.scales`` (the caller computes them from ``ratio=`` and the image
    size). Masks are passed through as given; the API validation decides whether one belongs.
    """
    spec = parsed.spec
    prompt = parsed.request_prompt
    if spec.model is Model.QWEN_IMAGE_EDIT:
        return EditRequest(
            model=spec.model,
            prompt=prompt,
            base_image=base_image,
            negative_prompt=parsed.negative_prompt,
            mask_image=mask_image,
        )
    parameters = EditParameters(n=parsed.n, seed=parsed.seed)
    if parsed.command in (Command.STYLE, Command.INSTRUCT):
        parameters = replace(parameters, strength=parsed.strength)
    elif parsed.command is Command.EXPAND:
        top, bottom, left, right = _expand_scales(parsed, scales)
        parameters = replace(
            parameters, top_scale=top, bottom_scale=bottom, left_scale=left, right_scale=right
        )
    elif parsed.command is Command.UPSCALE:
        parameters = replace(
            parameters, upscale_factor=parsed.upscale_factor or DEFAULT_UPSCALE_FACTOR
        )
    elif parsed.command is Command.SKETCH:
        parameters = replace(parameters, is_sketch=parsed.is_sketch)
    return EditRequest(
        model=spec.model,
        prompt=prompt,
        base_image=base_image,
        function=spec.function,
        mask_image=mask_image,
        parameters=parameters,
    )


def _expand_scales(
    parsed: ParsedCommand, scales: tuple[float, float, float, float] | None
) -> tuple[float, float, float, float]:
    chosen = scales if scales is not None else parsed.scales
    if chosen is None:
        # A bug in the caller, not a user mistake: ratio= needs the image size to become scales.
        raise ValueError("expand with ratio= needs scales computed from the image size")
    return chosen
