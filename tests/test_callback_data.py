"""Inline-button data: the wire formats, round trips, and strict refusal of anything else."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.callback_data import (
    KINDS,
    MAX_CALLBACK_DATA_BYTES,
    MAX_JOB_ID,
    MAX_PACK_IMAGES,
    MAX_PACK_STARS,
    MAX_RESULT_INDEX,
    Again,
    BuyPack,
    CallbackData,
    MaskAnswer,
    MaskChoice,
    MaskPreview,
    PickAction,
    PickStyle,
    PreviewStep,
    Upscale,
    parse,
)
from bot.commands import Command, LocalStyle

# (value, the exact data on the wire): the formats buttons already sent carry.
WIRE: list[tuple[CallbackData, str]] = [
    (Again(1), "again:1"),
    (Again(42), "again:42"),
    (Again(MAX_JOB_ID), "again:999999999999"),
    (Upscale(7, 0), "up:7:0"),
    (Upscale(7, 3), "up:7:3"),
    (Upscale(123456, 99), "up:123456:99"),
    *((PickAction(c), f"pick:{c.value}") for c in Command),
    *((PickStyle(s), f"pick:ls:{s.value}") for s in LocalStyle),
    (MaskChoice(MaskAnswer.USE), "mask:use"),
    (MaskChoice(MaskAnswer.NEW), "mask:new"),
    (BuyPack(10, 50), "buy:10:50"),
    (BuyPack(MAX_PACK_IMAGES, MAX_PACK_STARS), "buy:999999:99999"),
    *((MaskPreview(step, "0a1b2c3d"), f"mrun:{step.value}:0a1b2c3d") for step in PreviewStep),
]

REFUSED = [
    "buy:10",
    "buy:10:",
    "buy::50",
    "buy:0:50",
    "buy:10:0",
    "buy:010:50",
    "buy:10:50:1",
    "buy:1000000:50",  # 7 digits
    "buy:10:100000",  # 6 digits
    "buy:１0:50",
    "buy:10:50\n",
    "buy:-10:50",
    "mrun:run:0A1B2C3D",  # upper-case hex: one spelling only
    "mrun:run:0a1b2c3",
    "mrun:go:0a1b2c3d",
    "mrun:run:0a1b2c3d\n",
    "",
    ":",
    "again",
    "again:",
    "again:1_0",
    "again:１",  # full-width digit
    "again:١",  # Arabic-Indic digit
    "again:²",  # superscript: str.isdigit() says yes
    "again: 1",
    "again:1 ",
    "again:-1",
    "again:+1",
    "again:0",
    "again:01",
    "again:1\n",
    "\nagain:1",
    "again:1e3",
    "again:0x1",
    "again:1000000000000",  # 13 digits
    "again:" + "9" * 40,
    "again:1:2",
    "again:1x",
    "Again:1",
    "up:1",
    "up:1:",
    "up::0",
    "up:1:-1",
    "up:1:+1",
    "up:1:x",
    "up:1:00",
    "up:1:01",
    "up:1:100",
    "up:1:１",
    "up:0:0",
    "up:1:0:0",
    "up:1:0\n",
    "up:1_0:0",
    "pick:",
    "pick:nope",
    "pick:ls",
    "pick:ls:",
    "pick:ls:nope",
    "pick:ls:ICE",
    "pick:EDIT",
    "pick:edit ",
    "pick:edit\n",
    "pick:editx",
    "pick:ls:ice:",
    "pick:ls:icex",
    "pick:ls:ice\n",
    "pick::edit",
    "pick:ls:edit",
    "pick:ice",
    "unknown:1",
    "mask:",
    "mask:USE",
    "mask:use ",
    "mask:use\n",
    "mask:used",
    "mask:new:1",
]


@pytest.mark.parametrize(("value", "wire"), WIRE, ids=[w for _, w in WIRE])
def test_encodes_to_the_wire_format_and_back(value: CallbackData, wire: str) -> None:
    assert value.encode() == wire
    assert parse(wire) == value
    assert type(value).parse(wire) == value


@pytest.mark.parametrize(("value", "wire"), WIRE, ids=[w for _, w in WIRE])
def test_exactly_one_kind_takes_valid_data(value: CallbackData, wire: str) -> None:
    takers = [kind for kind in KINDS if kind.PATTERN.match(wire)]
    assert takers == [type(value)]


def test_a_style_is_never_taken_for_an_action() -> None:
    assert "ls" not in {c.value for c in Command}
    for style in LocalStyle:
        assert PickAction.parse(f"pick:ls:{style.value}") is None
        assert isinstance(parse(f"pick:ls:{style.value}"), PickStyle)


@pytest.mark.parametrize("raw", REFUSED, ids=repr)
def test_refuses_anything_not_in_canonical_form(raw: str) -> None:
    assert parse(raw) is None
    for kind in KINDS:
        assert kind.parse(raw) is None
        assert kind.PATTERN.match(raw) is None


def patterns_agree_with_parse(raw: str) -> None:
    for kind in KINDS:
        assert (kind.PATTERN.match(raw) is not None) == (kind.parse(raw) is not None)
    matched = [kind for kind in KINDS if kind.PATTERN.match(raw)]
    assert len(matched) <= 1
    parsed = parse(raw)
    assert (type(parsed) if parsed is not None else None) == (matched[0] if matched else None)


@pytest.mark.parametrize("raw", [*REFUSED, *(w for _, w in WIRE)], ids=repr)
def test_pattern_match_agrees_with_parse(raw: str) -> None:
    # PTB's CallbackQueryHandler(pattern=...) uses pattern.match: it must route exactly what
    # parse accepts, neither more (a prefix) nor less.
    patterns_agree_with_parse(raw)


# A known prefix (or none) and then anything from digits, look-alikes and the enums' letters.
NEAR_MISSES = st.tuples(
    st.sampled_from(["", "again:", "up:", "up:1:", "pick:", "pick:ls:"]),
    st.text(alphabet=st.sampled_from("0123456789１٣²_ -+\n:xlsiceditupno"), max_size=16),
).map("".join)


@given(NEAR_MISSES)
def test_pattern_match_agrees_with_parse_on_any_text(raw: str) -> None:
    patterns_agree_with_parse(raw)


@given(st.integers(1, MAX_JOB_ID), st.integers(0, MAX_RESULT_INDEX))
def test_round_trip_of_any_number(job_id: int, index: int) -> None:
    values: list[CallbackData] = [Again(job_id), Upscale(job_id, index)]
    for value in values:
        data = value.encode()
        assert parse(data) == value
        assert len(data.encode()) <= MAX_CALLBACK_DATA_BYTES


def test_the_longest_data_fits_telegram() -> None:
    longest: list[CallbackData] = [
        Again(MAX_JOB_ID),
        Upscale(MAX_JOB_ID, MAX_RESULT_INDEX),
        *(PickAction(c) for c in Command),
        *(PickStyle(s) for s in LocalStyle),
    ]
    assert max(len(v.encode().encode()) for v in longest) <= MAX_CALLBACK_DATA_BYTES


@pytest.mark.parametrize(
    "build",
    [
        lambda: Again(0),
        lambda: Again(-1),
        lambda: Again(MAX_JOB_ID + 1),
        lambda: Upscale(0, 0),
        lambda: Upscale(1, -1),
        lambda: Upscale(1, MAX_RESULT_INDEX + 1),
        lambda: BuyPack(0, 50),
        lambda: BuyPack(10, 0),
        lambda: BuyPack(MAX_PACK_IMAGES + 1, 50),
        lambda: BuyPack(10, MAX_PACK_STARS + 1),
    ],
)
def test_values_that_cannot_be_encoded_are_refused_when_built(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda: Again(True),
        lambda: Again("1"),  # type: ignore[arg-type]
        lambda: Upscale(1, 1.0),  # type: ignore[arg-type]
        lambda: PickAction("edit"),  # type: ignore[arg-type]
        lambda: PickStyle("ice"),  # type: ignore[arg-type]
    ],
)
def test_values_of_the_wrong_type_are_refused_when_built(build: Callable[[], object]) -> None:
    with pytest.raises(TypeError):
        build()


def test_values_are_frozen_and_hashable() -> None:
    value = Upscale(1, 2)
    with pytest.raises(AttributeError):
        value.index = 3  # type: ignore[misc]
    assert {value, Upscale(1, 2)} == {value}


@pytest.mark.parametrize(
    ("raw", "job"),
    [("up:7:0", 7), ("up:7", 7), ("up:7:x", 7), ("up:12:-1", 12), ("up:07:0", None),
     ("up:7x", None), ("up:", None), ("again:7", None), ("up:１:0", None)],
)
def test_upscale_route_names_the_job_before_the_index_is_judged(raw: str, job: int | None) -> None:
    assert Upscale.job_of(raw) == job
    assert (Upscale.ROUTE.match(raw) is not None) == (job is not None)


# Past 4300 digits int() raises ValueError instead of converting: no digit run may reach it.
HUGE = "9" * 5000


@pytest.mark.parametrize(
    "raw",
    [f"again:{HUGE}", f"up:{HUGE}:0", f"up:1:{HUGE}", f"up:{HUGE}", f"pick:{HUGE}",
     f"again:1{HUGE}", f"up:1:0{HUGE}"],
    ids=lambda raw: raw[:10] + "…",
)
def test_numbers_of_thousands_of_digits_are_refused_without_raising(raw: str) -> None:
    assert parse(raw) is None
    for kind in KINDS:
        assert kind.parse(raw) is None
    assert Upscale.job_of(raw) == (1 if raw.startswith("up:1:") else None)
