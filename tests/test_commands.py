"""The command parser: command recognition, options, limits, errors and API requests."""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.bailian.models import EditParameters, Function, Model
from bot.bailian.validation import validate_request
from bot.commands import (
    NEGATIVE_MAX_CHARS,
    PROMPT_MAX_CHARS,
    SPECS,
    Command,
    LocalStyle,
    ParsedCommand,
    build_edit_request,
    command_name,
    is_command,
    localstyle_prompt,
    parse_command,
    split_command,
)
from bot.errors import CommandParseError, RequestValidationError
from bot.texts import CATALOGUE, Lang, render_error, text

BOT = "BailianTestBot"
IMAGE = "data:image/png;base64,iVBORw0KGgo="
MASK = "data:image/png;base64,AAAA"

WANX_COMMANDS = [c for c in Command if SPECS[c].model is Model.WANX_IMAGE_EDIT]
# A prompt that every command accepts after its own command-specific part.
PROMPT_FOR: dict[Command, str] = dict.fromkeys(Command, "a red house")
PROMPT_FOR[Command.EXPAND] = "1.5 a red house"
PROMPT_FOR[Command.LOCALSTYLE] = "ice a red house"


def parse(text_: str) -> ParsedCommand:
    parsed = parse_command(text_, BOT)
    assert parsed is not None
    return parsed


def parse_error(text_: str) -> CommandParseError:
    with pytest.raises(CommandParseError) as info:
        parse_command(text_, BOT)
    return info.value


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def assert_renders(error: CommandParseError) -> None:
    """The error names a catalogue entry whose placeholders are exactly the params given."""
    entry = CATALOGUE[error.key]
    assert placeholders(entry.zh) == placeholders(entry.en) == set(error.params)
    for lang in Lang:
        assert text(error.key, lang, **error.params)


# --- recognising commands ----------------------------------------------------------------------


@pytest.mark.parametrize("command", list(Command))
@pytest.mark.parametrize("suffix", ["", "@BailianTestBot", "@bailiantestbot"])
def test_every_command_with_and_without_bot_name(command: Command, suffix: str) -> None:
    assert split_command(f"/{command.value}{suffix} make it red", BOT) == (command, "make it red")
    assert split_command(f"/{command.value}{suffix}", BOT) == (command, "")
    parsed = parse(f"/{command.value}{suffix} {PROMPT_FOR[command]}")
    assert parsed.command is command
    assert parsed.prompt == "a red house"


@pytest.mark.parametrize("command", list(Command))
def test_another_bots_command_is_not_ours(command: Command) -> None:
    text_ = f"/{command.value}@OtherBot {PROMPT_FOR[command]}"
    assert split_command(text_, BOT) is None
    assert parse_command(text_, BOT) is None
    assert is_command(text_)
    assert not is_command(text_, BOT)
    assert is_command(f"/{command.value} x", BOT)


@pytest.mark.parametrize(
    ("text_", "expected"),
    [
        ("  \n /EDIT make it red", (Command.EDIT, "make it red")),
        ("/Style@BAILIANTESTBOT x", (Command.STYLE, "x")),
        ("/edit把天空变红", (Command.EDIT, "把天空变红")),
        ("/edit\nline one\nline two", (Command.EDIT, "line one\nline two")),
        ("/edit", (Command.EDIT, "")),
        ("/edits x", None),
        ("/edit-x", None),
        ("/edit@ x", None),
        ("/edit@BailianTestBot@x y", None),
        ("/unknown x", None),
        ("edit x", None),
        ("make it /edit red", None),
        ("/", None),
        ("", None),
    ],
)
def test_split_command(text_: str, expected: tuple[Command, str] | None) -> None:
    assert split_command(text_, BOT) == expected


def test_bot_username_may_carry_its_at_sign() -> None:
    assert split_command("/edit@BailianTestBot x", "@BailianTestBot") == (Command.EDIT, "x")


@pytest.mark.parametrize(
    ("text_", "is_cmd", "name"),
    [
        ("/start", True, "start"),
        ("/Unknown@SomeBot hi", True, "unknown"),
        ("  /help", True, "help"),
        ("hello", False, None),
        ("/edit-x", False, None),
        ("", False, None),
    ],
)
def test_is_command_and_command_name(text_: str, is_cmd: bool, name: str | None) -> None:
    assert is_command(text_) is is_cmd
    assert command_name(text_) == name


# --- common options ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", WANX_COMMANDS)
@pytest.mark.parametrize(("value", "ok"), [("0", False), ("1", True), ("4", True), ("5", False)])
def test_n_boundaries(command: Command, value: str, ok: bool) -> None:
    text_ = f"/{command.value} {PROMPT_FOR[command]} n={value}"
    if ok:
        assert parse(text_).n == int(value)
    else:
        error = parse_error(text_)
        assert error.key == "cmd_error_out_of_range_integer"
        assert error.params == {"option": "n", "value": value, "low": 1, "high": 4}
        assert error.command == command.value
        assert error.example_key == SPECS[command].example_key
        assert_renders(error)


@pytest.mark.parametrize("command", WANX_COMMANDS)
@pytest.mark.parametrize(
    ("value", "ok"),
    [("-1", False), ("0", True), ("2147483647", True), ("2147483648", False)],
)
def test_seed_boundaries(command: Command, value: str, ok: bool) -> None:
    text_ = f"/{command.value} {PROMPT_FOR[command]} seed={value}"
    if ok:
        assert parse(text_).seed == int(value)
    else:
        error = parse_error(text_)
        assert error.key == "cmd_error_out_of_range_integer"
        assert error.params == {"option": "seed", "value": value, "low": 0, "high": 2147483647}


def test_defaults() -> None:
    parsed = parse("/style x")
    assert (parsed.n, parsed.seed, parsed.strength, parsed.negative_prompt) == (
        1,
        None,
        None,
        None,
    )


@pytest.mark.parametrize("command", [Command.STYLE, Command.INSTRUCT])
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-0.1", None),
        ("0", 0.0),
        ("0.5", 0.5),
        (".5", 0.5),
        ("1", 1.0),
        ("1.0", 1.0),
        ("1.01", None),
    ],
)
def test_strength_boundaries(command: Command, value: str, expected: float | None) -> None:
    text_ = f"/{command.value} x strength={value}"
    if expected is not None:
        assert parse(text_).strength == expected
    else:
        error = parse_error(text_)
        assert error.key == "cmd_error_out_of_range_number"
        assert error.params == {"option": "strength", "value": value, "low": 0.0, "high": 1.0}
        assert_renders(error)


@pytest.mark.parametrize(
    ("option", "value", "key", "expected"),
    [
        ("n", "abc", "cmd_error_bad_integer", "1–4"),
        ("n", "", "cmd_error_bad_integer", "1–4"),
        ("n", "2.5", "cmd_error_bad_integer", "1–4"),
        ("n", "1e3", "cmd_error_bad_integer", "1–4"),
        ("seed", "0x10", "cmd_error_bad_integer", "0–2147483647"),
        ("strength", "1e999", "cmd_error_bad_number", "0.0–1.0"),
        ("strength", "nan", "cmd_error_bad_number", "0.0–1.0"),
        ("strength", "NaN", "cmd_error_bad_number", "0.0–1.0"),
        ("strength", "inf", "cmd_error_bad_number", "0.0–1.0"),
        ("strength", "-inf", "cmd_error_bad_number", "0.0–1.0"),
        ("strength", "1" * 400, "cmd_error_out_of_range_number", None),
        ("strength", "", "cmd_error_bad_number", "0.0–1.0"),
        ("strength", "half", "cmd_error_bad_number", "0.0–1.0"),
    ],
)
def test_malformed_values(option: str, value: str, key: str, expected: str | None) -> None:
    error = parse_error(f"/style x {option}={value}")
    assert error.key == key
    assert error.params["option"] == option
    if expected is not None:
        assert error.params["expected"] == expected
    assert_renders(error)


def test_huge_integer_is_out_of_range_not_a_crash() -> None:
    error = parse_error("/style x seed=" + "9" * 5000)
    assert error.key == "cmd_error_out_of_range_integer"
    assert len(str(error.params["value"])) <= 40  # echoed values are cut short
    assert parse("/style x seed=" + "0" * 5000 + "7").seed == 7


def test_option_without_name() -> None:
    error = parse_error("/style x =5")
    assert (error.key, error.params) == ("cmd_error_option_without_name", {"value": "=5"})
    assert_renders(error)
    assert parse("/style 1 + 1 = 2").prompt == "1 + 1 = 2"
    assert parse("/style a == b").prompt == "a == b"


@pytest.mark.parametrize(
    ("text_", "expected"),
    [
        ("/style x N=3", 3),
        ("/style x n＝3", 3),
        ("/style x 数量=2", 2),
        ("/style x n=３", 3),
        ('/style x n="4"', 4),
        ("/style x n=+2", 2),
    ],
)
def test_option_spellings(text_: str, expected: int) -> None:
    assert parse(text_).n == expected


def test_chinese_aliases() -> None:
    parsed = parse("/instruct 戴帽子 种子=42 强度=0.3 数量=2")
    assert (parsed.seed, parsed.strength, parsed.n, parsed.prompt) == (42, 0.3, 2, "戴帽子")


def test_options_anywhere_and_prompt_order_kept() -> None:
    parsed = parse("/style n=2 turn it   into seed=5 a\tpicture book")
    assert parsed.prompt == "turn it into a picture book"
    assert (parsed.n, parsed.seed) == (2, 5)


@pytest.mark.parametrize(
    ("text_", "option", "allowed"),
    [
        ("/colorize x strength=0.5", "strength", "n, seed"),
        ("/upscale 2 top=1.5", "top", "n, seed, factor"),
        ("/expand 1.5 factor=2", "factor", "n, seed, scale, top, bottom, left, right, ratio"),
        ("/cartoon x 强度=0.5", "强度", "n, seed"),
        ("/style x Ratio=16:9", "Ratio", "n, seed, strength"),
    ],
)
def test_another_commands_option_is_an_error(text_: str, option: str, allowed: str) -> None:
    error = parse_error(text_)
    assert error.key == "cmd_error_unknown_option"
    command = text_.split()[0][1:]
    assert error.params == {"option": option, "allowed": allowed, "command": command}
    assert_renders(error)
    assert f"/{command} takes no {option}= option" in text(error.key, Lang.EN, **error.params)


@pytest.mark.parametrize(("text_", "option"), [("/edit x n=2", "n"), ("/edit x 种子=2", "种子")])
def test_n_and_seed_on_edit_say_it_makes_one_image(text_: str, option: str) -> None:
    error = parse_error(text_)
    assert (error.key, error.params) == ("cmd_error_edit_one_image", {"option": option})
    assert_renders(error)
    assert "one image" in text(error.key, Lang.EN, **error.params)


@pytest.mark.parametrize(
    ("text_", "prompt"),
    [
        ("/instruct write E=mc2 on the page", "write E=mc2 on the page"),
        ("/style x foo=1", "x foo=1"),
        ("/sketch x 颜色=红", "x 颜色=红"),
        ('/edit a sign saying title="Hello world"', 'a sign saying title="Hello world"'),
        ("/style a=b n=2", "a=b"),
    ],
)
def test_a_key_no_command_takes_is_prompt_text(text_: str, prompt: str) -> None:
    assert parse(text_).prompt == prompt


@pytest.mark.parametrize(
    ("text_", "option"),
    [
        ("/style x n=1 n=2", "n"),
        ("/style x n=1 数量=2", "数量"),
        ("/style x seed=1 SEED=1", "SEED"),
        ("/edit x neg=a neg=b", "neg"),
        ("/edit x neg=a -- b", "neg"),
        ("/upscale 2 factor=3", "factor"),
        ("/expand 1.5 scale=1.2", "scale"),
        ("/expand top=1.2 top=1.3", "top"),
    ],
)
def test_duplicate_options(text_: str, option: str) -> None:
    error = parse_error(text_)
    assert (error.key, error.params) == ("cmd_error_duplicate_option", {"option": option})
    assert_renders(error)


# --- prompts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [c for c in Command if SPECS[c].prompt_required])
def test_prompt_required(command: Command) -> None:
    options = "" if command is Command.EDIT else " n=1 seed=2"
    error = parse_error(f"/{command.value}{options}")
    assert error.key == "cmd_error_prompt_required"
    assert error.params == {"command": command.value}
    assert error.example_key == SPECS[command].example_key
    assert_renders(error)


def test_prompt_required_for_edit_even_with_only_a_negative() -> None:
    assert parse_error("/edit neg=blurry").key == "cmd_error_prompt_required"
    assert parse_error("/edit -- blurry").key == "cmd_error_prompt_required"


@pytest.mark.parametrize(
    ("command", "default"),
    [
        (Command.DEWATERMARK, "去除图像中的文字和水印"),
        (Command.UPSCALE, "图像超分"),
        (Command.ERASE, ""),
    ],
)
def test_optional_prompts_and_defaults(command: Command, default: str) -> None:
    parsed = parse(f"/{command.value}")
    assert parsed.prompt == ""
    assert parsed.request_prompt == default
    assert parse(f"/{command.value} 去除英文文字").request_prompt == "去除英文文字"


@pytest.mark.parametrize(("length", "ok"), [(800, True), (801, False), (5000, False)])
def test_prompt_length_limit(length: int, ok: bool) -> None:
    prompt = "画" * length
    if ok:
        assert parse(f"/edit {prompt}").prompt == prompt
    else:
        error = parse_error(f"/edit {prompt}")
        assert error.key == "cmd_error_prompt_too_long"
        assert error.params == {"length": length, "limit": PROMPT_MAX_CHARS}
        assert_renders(error)


def test_prompt_length_is_counted_after_normalisation() -> None:
    words = "ab " * 266 + "ab"  # 800 characters once runs of spaces become one
    assert len(words) == PROMPT_MAX_CHARS
    assert parse("/style " + words.replace(" ", "     ") + " n=2").prompt == words
    assert parse("/style " + "\x00" * 100 + "a" * 800).prompt == "a" * 800


def test_localstyle_limit_leaves_room_for_the_style() -> None:
    limit = parse_error("/localstyle ice " + "a" * 800).params["limit"]
    assert isinstance(limit, int) and limit < PROMPT_MAX_CHARS
    for style in LocalStyle:
        for subject in ("a" * limit, "画" * limit):
            parsed = parse(f"/localstyle {style.value} {subject}")
            assert len(parsed.request_prompt) <= PROMPT_MAX_CHARS
    assert parse_error(f"/localstyle {'a' * (limit + 1)}").key == "cmd_error_prompt_too_long"


def test_emoji_and_rtl_survive() -> None:
    prompt = "👩‍👩‍👧 add 🎩 to هذا القط ‏שלום‏"
    assert parse(f"/edit {prompt}").prompt == prompt


ZERO_WIDTH_ONLY = [
    "\u200b",
    "\u200b\u200c\u200d\u2060\ufeff",
    "\u200b \u2060\n\ufeff",
    "\u200e\u200f\u00ad",  # bidi marks and a soft hyphen: format characters too
    "\U000e0067\U000e007f",  # emoji tag characters with no emoji before them
]


@pytest.mark.parametrize("invisible", ZERO_WIDTH_ONLY, ids=repr)
@pytest.mark.parametrize("command", ["style", "cartoon", "edit", "sketch"])
def test_prompt_of_only_format_characters_is_missing(command: str, invisible: str) -> None:
    error = parse_error(f"/{command} {invisible}")
    assert error.key == "cmd_error_prompt_required"
    assert_renders(error)


@pytest.mark.parametrize("invisible", ZERO_WIDTH_ONLY, ids=repr)
def test_format_characters_alone_are_no_prompt_where_one_is_optional(invisible: str) -> None:
    assert parse(f"/upscale 4 {invisible}").prompt == ""
    assert parse(f"/upscale {invisible}").upscale_factor == 2
    assert parse(f"/localstyle {invisible}").style is None
    assert parse(f"/edit a red hat -- {invisible}").negative_prompt is None
    assert parse(f'/edit a red hat neg="{invisible}"').negative_prompt is None


def test_zero_width_characters_are_trimmed_off_words() -> None:
    parsed = parse("/style \u200bmake it\u2060 red\ufeff n=2\u200b \u200bseed=5")
    assert parsed.prompt == "make it red"
    assert (parsed.n, parsed.seed) == (2, 5)
    assert parse("/upscale \u200b4\u200b").upscale_factor == 4
    assert parse('/edit red neg="\u200bblurry\u200c dark\u200d"').negative_prompt == "blurry dark"


def test_joiners_inside_words_and_emoji_sequences_stay() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # ZWJ sequence
    england = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"  # tags
    persian = "می\u200cخواهم"  # ZWNJ inside a word
    prompt = f"{family} {england} {persian} \u200fשלום\u200f"
    assert parse(f"/style \u200b{prompt}\u200b").prompt == prompt


def test_control_characters_are_dropped_newlines_kept() -> None:
    parsed = parse("/edit make\x00 it\x1b[31m red\r\nand\x07 blue\x7f\x85\tnow")
    assert parsed.prompt == "make it[31m red\nand blue now"


def test_newline_between_words_survives_removed_options() -> None:
    assert parse("/style first line n=2\nsecond line").prompt == "first line\nsecond line"
    assert parse("/style a\n\n\n b").prompt == "a\nb"


# --- negative prompt ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text_",
    [
        '/edit make it red neg="blurry, dark"',
        "/edit make it red neg=“blurry, dark”",
        "/edit make it red neg=”blurry, dark”",
        "/edit make it red neg=「blurry, dark」",
        "/edit make it red neg=『blurry, dark』",
        "/edit make it red NEG＝“blurry,   dark”",
        '/edit neg="blurry, dark" make it red',
        '/edit make neg="blurry,\ndark" it red',
        "/edit make it red -- blurry, dark",
        "/edit make it red --   blurry,\n dark  ",
        "/edit make it red 反向=「blurry, dark」",
        '/edit make it red negative="blurry, dark"',
    ],
)
def test_negative_prompt_forms(text_: str) -> None:
    parsed = parse(text_)
    assert parsed.prompt == "make it red"
    assert parsed.negative_prompt == "blurry, dark"


def test_negative_prompt_single_word_and_empty() -> None:
    assert parse("/edit x neg=blurry").negative_prompt == "blurry"
    assert parse("/edit x neg=").negative_prompt is None
    assert parse("/edit x --").negative_prompt is None
    # Options after "--" are part of the negative prompt, not options.
    assert parse("/edit x -- n=2 seed=1").negative_prompt == "n=2 seed=1"
    # "--" glued to a word is an ordinary word.
    assert parse("/edit x--y").prompt == "x--y"


def test_unclosed_quote() -> None:
    error = parse_error('/edit make it red neg="blurry, dark')
    assert (error.key, error.params) == ("cmd_error_unclosed_quote", {"option": "neg"})
    assert_renders(error)


@pytest.mark.parametrize(("length", "ok"), [(500, True), (501, False)])
def test_negative_length_limit(length: int, ok: bool) -> None:
    for text_ in (f'/edit x neg="{"n" * length}"', f"/edit x -- {'n' * length}"):
        if ok:
            assert parse(text_).negative_prompt == "n" * length
        else:
            error = parse_error(text_)
            assert error.key == "cmd_error_negative_too_long"
            assert error.params == {"length": length, "limit": NEGATIVE_MAX_CHARS}
            assert_renders(error)


@pytest.mark.parametrize("command", WANX_COMMANDS)
@pytest.mark.parametrize(("form", "option"), [("neg=blurry", "neg"), ("-- blurry", "--")])
def test_negative_only_on_edit(command: Command, form: str, option: str) -> None:
    error = parse_error(f"/{command.value} {PROMPT_FOR[command]} {form}")
    assert error.key == "cmd_error_negative_not_supported"
    assert error.params == {"option": option, "command": command.value}
    assert_renders(error)


# --- /localstyle -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "style", "subject"),
    [
        ("冰雕 房子", LocalStyle.ICE, "房子"),
        ("冰雕风格 房子", LocalStyle.ICE, "房子"),
        ("云朵 小狗", LocalStyle.CLOUD, "小狗"),
        ("花灯 灯笼", LocalStyle.LANTERN, "灯笼"),
        ("chinese festive lantern the bridge", LocalStyle.LANTERN, "the bridge"),
        ("Lantern the bridge", LocalStyle.LANTERN, "the bridge"),
        ("木板 桌子", LocalStyle.WOODEN, "桌子"),
        ("wooden table", LocalStyle.WOODEN, "table"),
        ("青花瓷 花瓶", LocalStyle.PORCELAIN, "花瓶"),
        ("Blue and White Porcelain the vase", LocalStyle.PORCELAIN, "the vase"),
        ("porcelain the vase", LocalStyle.PORCELAIN, "the vase"),
        ("毛茸茸 小猫", LocalStyle.FLUFFY, "小猫"),
        ("FLUFFY cat", LocalStyle.FLUFFY, "cat"),
        ("毛线 围巾", LocalStyle.WEAVING, "围巾"),
        ("weaving scarf", LocalStyle.WEAVING, "scarf"),
        ("气球 字母", LocalStyle.BALLOON, "字母"),
        ("balloon letters", LocalStyle.BALLOON, "letters"),
        ("Festive lantern the bridge", LocalStyle.LANTERN, "the bridge"),
        ("Blue-and-white porcelain vase", LocalStyle.PORCELAIN, "vase"),
        ("Knitted scarf", LocalStyle.WEAVING, "scarf"),
        ("ice", LocalStyle.ICE, ""),
        ("房子", None, "房子"),
        ("the house", None, "the house"),
        ("", None, ""),
    ],
)
def test_localstyle_names(words: str, style: LocalStyle | None, subject: str) -> None:
    parsed = parse(f"/localstyle {words} n=2")
    assert (parsed.style, parsed.prompt, parsed.n) == (style, subject, 2)
    assert parsed.unknown_style is None


@pytest.mark.parametrize(
    ("words", "unknown", "subject"),
    [
        ("lego the cup", "lego", "the cup"),
        ("blue house", "blue", "house"),
        ("乐高 杯子", "乐高", "杯子"),
        ("marble\nthe statue", "marble", "the statue"),
    ],
)
def test_localstyle_first_word_meant_as_a_style_is_kept_for_the_message(
    words: str, unknown: str, subject: str
) -> None:
    parsed = parse(f"/localstyle {words}")
    assert (parsed.style, parsed.unknown_style, parsed.prompt) == (None, unknown, subject)
    assert ParsedCommand.from_json(parsed.to_json()) == parsed
    chosen = parsed.with_style(LocalStyle.ICE)
    assert (chosen.style, chosen.unknown_style) == (LocalStyle.ICE, None)
    assert chosen.request_prompt == localstyle_prompt(LocalStyle.ICE, subject)


def test_localstyle_prompt_follows_the_reference_tip() -> None:
    assert parse("/localstyle 冰雕 房子").request_prompt == "把房子变成冰雕风格"
    assert parse("/localstyle ice the house").request_prompt == "turn the house into ice style"
    assert parse("/localstyle 青花瓷").request_prompt == "把画面主体变成青花瓷风格"
    assert parse("/localstyle 冰雕 把房子变成冰雕风格").request_prompt == "把房子变成冰雕风格"
    # "ice" inside another word is not the style already written out.
    assert localstyle_prompt(LocalStyle.ICE, "a nice house") == "turn a nice house into ice style"


def test_localstyle_without_style_then_chosen() -> None:
    parsed = parse("/localstyle 房子 seed=3")
    assert parsed.style is None
    with pytest.raises(CommandParseError) as info:
        build_edit_request(parsed, IMAGE)
    assert info.value.key == "cmd_error_style_required"
    assert_renders(info.value)
    chosen = parsed.with_style(LocalStyle.BALLOON)
    request = build_edit_request(chosen, IMAGE)
    assert request.prompt == "把房子变成气球风格"
    assert request.parameters == EditParameters(n=1, seed=3)
    validate_request(request)


def test_local_style_names_and_lookup() -> None:
    assert len(LocalStyle) == 8
    assert {s.zh for s in LocalStyle} == {
        "冰雕",
        "云朵",
        "花灯",
        "木板",
        "青花瓷",
        "毛茸茸",
        "毛线",
        "气球",
    }
    assert LocalStyle.LANTERN.en == "chinese festive lantern"
    assert LocalStyle.PORCELAIN.en == "blue and white porcelain"
    for style in LocalStyle:
        assert LocalStyle.lookup(style.zh) is style
        assert LocalStyle.lookup(style.en.upper()) is style
        assert LocalStyle.lookup(style.value) is style
        assert style.label("zh") == style.zh
        assert LocalStyle.lookup(style.label("en")) is style  # a label typed back works
        assert style.label("en")[0].isupper()
        assert len(style.value.encode()) <= 20  # fits callback data beside a prefix
    # Button labels are words, not the API's spellings.
    assert LocalStyle.LANTERN.label("en") == "Festive lantern"
    assert LocalStyle.PORCELAIN.label("en") == "Blue-and-white porcelain"
    assert LocalStyle.lookup("marble") is None
    assert LocalStyle.lookup("风格") is None


# --- /expand -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("0.99", False),
        ("1", None),
        ("1.0", None),
        ("1.5", True),
        ("2", True),
        ("2.0", True),
        ("2.01", False),
    ],
)
@pytest.mark.parametrize("form", ["bare", "scale", "top", "bottom", "left", "right"])
def test_expand_scale_boundaries(value: str, ok: bool | None, form: str) -> None:
    text_ = f"/expand {value} beach" if form == "bare" else f"/expand {form}={value} beach"
    if ok:
        parsed = parse(text_)
        number = float(value)
        expected = {
            "bare": (number,) * 4,
            "scale": (number,) * 4,
            "top": (number, 1.0, 1.0, 1.0),
            "bottom": (1.0, number, 1.0, 1.0),
            "left": (1.0, 1.0, number, 1.0),
            "right": (1.0, 1.0, 1.0, number),
        }[form]
        assert parsed.scales == expected
        assert parsed.ratio is None
        assert parsed.prompt == "beach"
    elif ok is None:  # in range but expands nothing
        error = parse_error(text_)
        assert (error.key, error.params) == ("cmd_error_expand_nothing", {})
        assert_renders(error)
    else:
        error = parse_error(text_)
        assert error.key == "cmd_error_out_of_range_number"
        option = "/expand" if form == "bare" else form  # what the user typed
        assert error.params == {"option": option, "value": value, "low": 1.0, "high": 2.0}


@pytest.mark.parametrize("word", ["1.5x", "x1.5", "×1.5", "1.5倍", "１.５"])
def test_expand_bare_number_spellings(word: str) -> None:
    assert parse(f"/expand {word}").scales == (1.5,) * 4


def test_expand_number_only_as_first_word() -> None:
    parsed = parse("/expand top=1.2 two dogs and 2 cats")
    assert parsed.prompt == "two dogs and 2 cats"
    assert parsed.scales == (1.2, 1.0, 1.0, 1.0)


def test_expand_sides_combined() -> None:
    parsed = parse("/expand 上=1.2 bottom=1.3 left=2 RIGHT=1.1 海边 n=2")
    assert parsed.scales == (1.2, 1.3, 2.0, 1.1)
    assert (parsed.prompt, parsed.n) == ("海边", 2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("16:9", (16, 9)), ("9:16", (9, 16)), ("4：3", (4, 3)), ("16x9", (16, 9)), ("1:1", (1, 1))],
)
def test_expand_ratio(value: str, expected: tuple[int, int]) -> None:
    parsed = parse(f"/expand ratio={value} 城市天际线")
    assert (parsed.ratio, parsed.scales, parsed.prompt) == (expected, None, "城市天际线")
    assert parse(f"/expand 比例={value}").ratio == expected


@pytest.mark.parametrize(
    "value", ["16:0", "0:9", "abc", "16", "16:", ":9", "1.5:1", "-16:9", "", "99999:1"]
)
def test_expand_bad_ratio(value: str) -> None:
    error = parse_error(f"/expand ratio={value}")
    assert (error.key, error.params) == (
        "cmd_error_bad_ratio",
        {"option": "ratio", "value": value},
    )
    assert_renders(error)


@pytest.mark.parametrize(
    ("options", "first", "second"),
    [
        ("1.5 top=1.2", "1.5", "top="),
        ("1.5x top=1.2", "1.5x", "top="),
        ("scale=1.5 left=1.2", "scale=", "left="),
        ("ratio=16:9 top=1.2", "ratio=", "top="),
        ("ratio=16:9 right=1.2 left=1.3", "ratio=", "left="),
        ("1.5 ratio=16:9", "1.5", "ratio="),
        ("比例=16:9 上=1.2", "比例=", "上="),
    ],
)
def test_expand_conflicts(options: str, first: str, second: str) -> None:
    error = parse_error(f"/expand {options}")
    assert error.key == "cmd_error_expand_conflict"
    assert error.params == {"first": first, "second": second}
    assert_renders(error)


def test_expand_default_prompt() -> None:
    parsed = parse("/expand 2")
    assert parsed.prompt == ""
    assert parsed.request_prompt == SPECS[Command.EXPAND].default_prompt != ""


# --- /upscale and /sketch ----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "ok"), [("0", False), ("1", True), ("4", True), ("5", False)])
@pytest.mark.parametrize("form", ["bare", "factor", "倍数"])
def test_upscale_boundaries(value: str, ok: bool, form: str) -> None:
    text_ = f"/upscale {value}" if form == "bare" else f"/upscale {form}={value}"
    if ok:
        parsed = parse(text_)
        assert parsed.upscale_factor == int(value)
        assert parsed.request_prompt == "图像超分"
    else:
        error = parse_error(text_)
        assert error.key == "cmd_error_out_of_range_integer"
        option = "/upscale" if form == "bare" else form  # what the user typed
        assert error.params == {"option": option, "value": value, "low": 1, "high": 4}


def test_upscale_forms() -> None:
    assert parse("/upscale").upscale_factor == 2
    assert parse("/upscale 3x 提升清晰度").upscale_factor == 3
    assert parse("/upscale 3x 提升清晰度").prompt == "提升清晰度"
    assert parse("/upscale 提升 4 倍").upscale_factor == 2  # a number later is prompt text
    assert parse_error("/upscale 2.5").key == "cmd_error_bad_integer"
    assert parse("/style 2").upscale_factor is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("yes", True),
        ("YES", True),
        ("true", True),
        ("1", True),
        ("是", True),
        ("no", False),
        ("false", False),
        ("0", False),
        ("否", False),
        ("False", False),
    ],
)
def test_sketch_flag(value: str, expected: bool) -> None:
    parsed = parse(f"/sketch 一座现代建筑 sketch={value}")
    assert parsed.is_sketch is expected
    assert parse(f"/sketch 一座现代建筑 线稿={value}").is_sketch is expected


def test_sketch_flag_malformed_and_default() -> None:
    assert parse("/sketch house").is_sketch is None
    error = parse_error("/sketch house sketch=maybe")
    assert error.key == "cmd_error_bad_bool"
    assert error.params == {"option": "sketch", "value": "maybe", "expected": "yes/no"}
    assert_renders(error)


# --- JSON and requests -------------------------------------------------------------------------

ROUND_TRIP = [
    '/edit 把天空换成晚霞 neg="模糊, 变形"',
    "/style 法国绘本 strength=0.25 n=3 seed=2147483647",
    "/localstyle 青花瓷 花瓶",
    "/localstyle 花瓶",
    "/instruct 戴帽子 strength=0",
    "/erase",
    "/dewatermark seed=0",
    "/expand top=1.25 left=2 海边",
    "/expand ratio=16:9",
    "/upscale 4",
    "/colorize 红色花朵",
    "/sketch 建筑 sketch=no",
    "/cartoon 👋 探出头\n第二行",
]


@pytest.mark.parametrize("text_", ROUND_TRIP)
def test_json_round_trip(text_: str) -> None:
    parsed = parse(text_)
    assert ParsedCommand.from_json(parsed.to_json()) == parsed
    again = parsed.with_seed(99)
    assert again.seed == 99
    assert ParsedCommand.from_json(again.to_json()) == again


@pytest.mark.parametrize("lang", list(Lang))
@pytest.mark.parametrize("command", list(Command))
def test_example_lines_work_in_each_language(command: Command, lang: Lang) -> None:
    spec = SPECS[command]
    assert spec.command is command
    parsed = parse(text(spec.example_key, lang))
    assert parsed.command is command
    assert parsed.style is not None or command is not Command.LOCALSTYLE
    assert spec.usage_key in CATALOGUE


@pytest.mark.parametrize(
    ("lang", "example"),
    [
        (Lang.EN, "/style turn it into a French picture book strength=0.6"),
        (Lang.ZH, "/style 转换成法国绘本风格 strength=0.6"),
    ],
)
def test_an_error_shows_the_example_in_the_readers_language(lang: Lang, example: str) -> None:
    rendered = render_error(parse_error("/style"), lang)
    assert rendered.endswith(f"<code>{example}</code>")
    assert rendered.startswith(text("cmd_error_prompt_required", lang, command="style"))


@pytest.mark.parametrize(
    ("text_", "says"),
    [
        ("/upscale 9", "/upscale takes 1–4 (you wrote 9)"),
        ("/upscale 9x", "/upscale takes 1–4 (you wrote 9)"),
        ("/upscale factor=9", "factor takes 1–4 (you wrote 9)"),
        ("/upscale 倍数=9", "倍数 takes 1–4 (you wrote 9)"),
        ("/upscale 2.5", "/upscale takes a whole number, 1–4 (you wrote 2.5)"),
        ("/expand 3", "/expand takes 1.0–2.0 (you wrote 3)"),
        ("/expand top=3", "top takes 1.0–2.0 (you wrote 3)"),
        ("/style x N=9", "N takes 1–4 (you wrote 9)"),
    ],
)
def test_errors_name_what_the_user_typed(text_: str, says: str) -> None:
    error = parse_error(text_)
    assert render_error(error, Lang.EN).startswith(says)
    assert "factor" not in render_error(error, Lang.EN) or "factor" in text_


def _mask_for(command: Command) -> str | None:
    return MASK if command is Command.ERASE else None


@pytest.mark.parametrize("lang", list(Lang))
@pytest.mark.parametrize("command", list(Command))
def test_build_edit_request_is_valid_for_every_command(command: Command, lang: Lang) -> None:
    spec = SPECS[command]
    parsed = parse(text(spec.example_key, lang))
    scales = (1.0, 1.0, 1.5, 1.5) if parsed.ratio is not None else None
    request = build_edit_request(parsed, IMAGE, _mask_for(command), scales)
    validate_request(request)
    assert request.model is spec.model
    assert request.function is spec.function
    assert request.base_image == IMAGE
    assert request.mask_image == _mask_for(command)


@pytest.mark.parametrize("text_", ROUND_TRIP)
def test_build_edit_request_round_trip_texts_are_valid(text_: str) -> None:
    parsed = parse(text_)
    if parsed.style is None and parsed.command is Command.LOCALSTYLE:
        parsed = parsed.with_style(LocalStyle.CLOUD)
    scales = (1.0, 1.0, 1.5, 1.5) if parsed.ratio is not None else None
    validate_request(build_edit_request(parsed, IMAGE, _mask_for(parsed.command), scales))


def test_qwen_request_carries_only_the_negative_prompt() -> None:
    request = build_edit_request(parse("/edit make it red neg=blurry"), IMAGE)
    assert request.model is Model.QWEN_IMAGE_EDIT
    assert request.function is None
    assert (request.prompt, request.negative_prompt) == ("make it red", "blurry")
    assert request.parameters == EditParameters()
    validate_request(request)


@pytest.mark.parametrize(
    ("text_", "parameters"),
    [
        ("/style x strength=0.7 n=2 seed=1", EditParameters(n=2, seed=1, strength=0.7)),
        ("/style x", EditParameters(n=1)),
        ("/instruct x strength=0.2", EditParameters(n=1, strength=0.2)),
        (
            "/expand 1.5",
            EditParameters(n=1, top_scale=1.5, bottom_scale=1.5, left_scale=1.5, right_scale=1.5),
        ),
        ("/upscale", EditParameters(n=1, upscale_factor=2)),
        ("/upscale 1 seed=4", EditParameters(n=1, seed=4, upscale_factor=1)),
        ("/sketch x sketch=yes", EditParameters(n=1, is_sketch=True)),
        ("/sketch x", EditParameters(n=1)),
        ("/colorize n=4", EditParameters(n=4)),
        ("/cartoon x", EditParameters(n=1)),
    ],
)
def test_request_parameters_only_what_the_function_takes(
    text_: str, parameters: EditParameters
) -> None:
    request = build_edit_request(parse(text_), IMAGE)
    assert request.parameters == parameters
    assert request.negative_prompt is None
    validate_request(request)


def test_scales_argument_overrides_and_ratio_needs_it() -> None:
    parsed = parse("/expand ratio=16:9")
    with pytest.raises(ValueError, match="ratio"):
        build_edit_request(parsed, IMAGE)
    request = build_edit_request(parsed, IMAGE, scales=(1.0, 1.0, 1.4, 1.4))
    assert (request.parameters.left_scale, request.parameters.top_scale) == (1.4, 1.0)
    overridden = build_edit_request(parse("/expand 2"), IMAGE, scales=(1.1, 1.1, 1.1, 1.1))
    assert overridden.parameters.top_scale == 1.1


def test_validation_still_guards_a_missing_mask() -> None:
    # The parser does not know about attachments: /erase without a mask is refused downstream.
    with pytest.raises(RequestValidationError):
        validate_request(build_edit_request(parse("/erase"), IMAGE))


def test_specs_cover_every_command_and_function() -> None:
    assert set(SPECS) == set(Command)
    assert {s.function for s in SPECS.values() if s.function} == set(Function)
    assert SPECS[Command.EDIT].model is Model.QWEN_IMAGE_EDIT
    assert SPECS[Command.EDIT].options == {"neg"}


def test_every_command_catalogue_entry_has_both_languages() -> None:
    for key, entry in CATALOGUE.items():
        if key.startswith(("cmd_error_", "cmd_usage_")):
            assert entry.zh and entry.en
            assert placeholders(entry.zh) == placeholders(entry.en), key


# --- fuzz --------------------------------------------------------------------------------------

_TOKENS = st.sampled_from(
    [
        "n=",
        "n=2",
        "n=abc",
        "seed=",
        "seed=-1",
        "strength=0.5",
        "strength=nan",
        "neg=",
        'neg="',
        'neg="a b"',
        "neg=“x",
        "neg=「y」",
        "--",
        "=",
        "=5",
        "＝",
        "top=1.5",
        "bottom=3",
        "left=",
        "right=1",
        "ratio=16:9",
        "ratio=:",
        "scale=2",
        "factor=3",
        "sketch=是",
        "1.5",
        "2x",
        "×",
        "冰雕",
        "ice",
        "blue",
        "and",
        "white",
        "porcelain",
        "\n",
        "\x00",
        "\u200f",
        "👩‍👩‍👧",
        "数量=3",
        "种子=1",
        "a=b",
        "E=mc2",
        '"',
        "「",
        "」",
        "9" * 30,
        "1e999",
    ]
)
_FUZZ_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _check_outcome(text_: str) -> None:
    try:
        parsed = parse_command(text_, BOT)
    except CommandParseError as error:
        assert error.key in CATALOGUE
        assert error.example_key in {spec.example_key for spec in SPECS.values()}
        assert_renders(error)
        return
    if parsed is not None:
        assert isinstance(parsed, ParsedCommand)
        assert len(parsed.prompt) <= PROMPT_MAX_CHARS
        assert ParsedCommand.from_json(parsed.to_json()) == parsed


@_FUZZ_SETTINGS
@given(st.text())
def test_fuzz_arbitrary_text(text_: str) -> None:
    _check_outcome(text_)


@_FUZZ_SETTINGS
@given(
    command=st.sampled_from(list(Command)),
    suffix=st.sampled_from(["", "@BailianTestBot", "@other"]),
    tokens=st.lists(st.one_of(_TOKENS, st.text(max_size=8)), max_size=12),
    separators=st.lists(
        st.sampled_from([" ", "  ", "\n", "\t", "\u3000"]), min_size=12, max_size=12
    ),
)
def test_fuzz_command_with_random_tokens(
    command: Command, suffix: str, tokens: list[str], separators: list[str]
) -> None:
    body = "".join(sep + token for sep, token in zip(separators, tokens, strict=False))
    _check_outcome(f"/{command.value}{suffix}{body}")
