"""validate_request against every rule of the API reference, at its boundaries."""

from __future__ import annotations

import dataclasses

import pytest

from bot.bailian import EditParameters, EditRequest, Function, Model, validate_request
from bot.bailian.client import build_qwen_body, build_wanx_body
from bot.errors import RequestValidationError

IMAGE = "data:image/png;base64,iVBORw0KGgo="
MASK = "data:image/png;base64,AAAA"


def wanx(
    function: Function = Function.DESCRIPTION_EDIT, prompt: str = "add a hat", **kwargs: object
) -> EditRequest:
    parameters = kwargs.pop("parameters", EditParameters())
    mask = kwargs.pop(
        "mask_image", MASK if function is Function.DESCRIPTION_EDIT_WITH_MASK else None
    )
    return EditRequest(
        model=Model.WANX_IMAGE_EDIT,
        prompt=prompt,
        base_image=IMAGE,
        function=function,
        mask_image=mask,  # type: ignore[arg-type]
        parameters=parameters,  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )


def qwen(prompt: str = "make it red", **kwargs: object) -> EditRequest:
    return EditRequest(model=Model.QWEN_IMAGE_EDIT, prompt=prompt, base_image=IMAGE, **kwargs)  # type: ignore[arg-type]


def refused(request: EditRequest) -> RequestValidationError:
    with pytest.raises(RequestValidationError) as info:
        validate_request(request)
    return info.value


@pytest.mark.parametrize("function", list(Function))
def test_every_function_accepts_a_plain_request(function: Function) -> None:
    validate_request(wanx(function))


@pytest.mark.parametrize(("length", "ok"), [(0, False), (1, True), (800, True), (801, False)])
def test_prompt_length(length: int, ok: bool) -> None:
    for request in (wanx(prompt="x" * length), qwen(prompt="x" * length)):
        if ok:
            validate_request(request)
        else:
            assert refused(request).field == "prompt"


def test_prompt_counts_characters_not_bytes() -> None:
    validate_request(wanx(prompt="猫" * 800))
    assert refused(wanx(prompt="猫" * 801)).field == "prompt"


@pytest.mark.parametrize(
    ("function", "empty_ok"),
    [
        (Function.DESCRIPTION_EDIT_WITH_MASK, True),
        (Function.REMOVE_WATERMARK, False),
        (Function.SUPER_RESOLUTION, False),
        (Function.COLORIZATION, False),
        (Function.STYLIZATION_ALL, False),
    ],
)
@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt_only_where_the_reference_allows_it(
    function: Function, empty_ok: bool, prompt: str
) -> None:
    request = wanx(function, prompt=prompt)
    if empty_ok:
        validate_request(request)
    else:
        assert refused(request).field == "prompt"


@pytest.mark.parametrize(("length", "ok"), [(0, True), (500, True), (501, False)])
def test_negative_prompt_length_on_qwen(length: int, ok: bool) -> None:
    request = qwen(negative_prompt="n" * length)
    if ok:
        validate_request(request)
    else:
        assert refused(request).field == "negative_prompt"


def test_negative_prompt_is_qwen_only() -> None:
    assert refused(wanx(negative_prompt="blurry")).field == "negative_prompt"


@pytest.mark.parametrize(
    ("value", "ok"), [(0, False), (1, True), (4, True), (5, False), (True, False)]
)
def test_n(value: int, ok: bool) -> None:
    request = wanx(parameters=EditParameters(n=value))
    if ok:
        validate_request(request)
    else:
        assert refused(request).field == "n"


@pytest.mark.parametrize(
    ("value", "ok"), [(-1, False), (0, True), (2147483647, True), (2147483648, False)]
)
def test_seed(value: int, ok: bool) -> None:
    request = wanx(parameters=EditParameters(seed=value))
    if ok:
        validate_request(request)
    else:
        assert refused(request).field == "seed"


@pytest.mark.parametrize(
    ("value", "ok"),
    [(-0.01, False), (0.0, True), (0.5, True), (1.0, True), (1.01, False), (float("nan"), False)],
)
def test_strength(value: float, ok: bool) -> None:
    for function in (Function.STYLIZATION_ALL, Function.DESCRIPTION_EDIT):
        request = wanx(function, parameters=EditParameters(strength=value))
        if ok:
            validate_request(request)
        else:
            assert refused(request).field == "strength"


@pytest.mark.parametrize("name", ["top_scale", "bottom_scale", "left_scale", "right_scale"])
@pytest.mark.parametrize(
    ("value", "ok"), [(0.99, False), (1.0, True), (1.5, True), (2.0, True), (2.01, False)]
)
def test_scales(name: str, value: float, ok: bool) -> None:
    request = wanx(Function.EXPAND, parameters=EditParameters(**{name: value}))  # type: ignore[arg-type]
    if ok:
        validate_request(request)
    else:
        assert refused(request).field == name


@pytest.mark.parametrize(("value", "ok"), [(0, False), (1, True), (4, True), (5, False)])
def test_upscale_factor(value: int, ok: bool) -> None:
    request = wanx(Function.SUPER_RESOLUTION, parameters=EditParameters(upscale_factor=value))
    if ok:
        validate_request(request)
    else:
        assert refused(request).field == "upscale_factor"


@pytest.mark.parametrize(
    ("parameters", "owner"),
    [
        (EditParameters(strength=0.5), {Function.STYLIZATION_ALL, Function.DESCRIPTION_EDIT}),
        (EditParameters(top_scale=1.5), {Function.EXPAND}),
        (EditParameters(right_scale=1.5), {Function.EXPAND}),
        (EditParameters(upscale_factor=2), {Function.SUPER_RESOLUTION}),
        (EditParameters(is_sketch=True), {Function.DOODLE}),
        (EditParameters(n=2, seed=7, watermark=True), set(Function)),
    ],
)
def test_parameters_only_where_the_function_takes_them(
    parameters: EditParameters, owner: set[Function]
) -> None:
    for function in Function:
        request = wanx(function, parameters=parameters)
        if function in owner:
            validate_request(request)
        else:
            error = refused(request)
            assert error.field in {k for k, v in vars(parameters).items() if v is not None}


def test_mask_required_for_description_edit_with_mask_and_only_there() -> None:
    error = refused(wanx(Function.DESCRIPTION_EDIT_WITH_MASK, mask_image=None))
    assert error.field == "mask_image"
    for function in set(Function) - {Function.DESCRIPTION_EDIT_WITH_MASK}:
        assert refused(wanx(function, mask_image=MASK)).field == "mask_image"
    assert refused(qwen(mask_image=MASK)).field == "mask_image"


def test_function_required_for_wanx_and_absent_for_qwen() -> None:
    request = dataclasses.replace(wanx(), function=None)
    assert refused(request).field == "function"
    assert refused(qwen(function=Function.DESCRIPTION_EDIT)).field == "function"


@pytest.mark.parametrize(
    ("parameters", "ok"),
    [
        (EditParameters(watermark=True), True),
        (EditParameters(n=2), False),
        (EditParameters(seed=1), False),
        (EditParameters(strength=0.5), False),
    ],
)
def test_qwen_takes_only_negative_prompt_and_watermark(
    parameters: EditParameters, ok: bool
) -> None:
    if ok:
        validate_request(qwen(parameters=parameters))
    else:
        refused(qwen(parameters=parameters))


def test_base_image_must_be_a_uri() -> None:
    assert refused(dataclasses.replace(wanx(), base_image="")).field == "base_image"
    assert refused(dataclasses.replace(wanx(), base_image="/tmp/a.png")).field == "base_image"


def test_wanx_body_sends_only_the_set_parameters() -> None:
    request = wanx(Function.EXPAND, prompt="a park", parameters=EditParameters(top_scale=1.5, n=2))
    assert build_wanx_body(request) == {
        "model": "wanx2.1-imageedit",
        "input": {"function": "expand", "prompt": "a park", "base_image_url": IMAGE},
        "parameters": {"n": 2, "top_scale": 1.5},
    }
    masked = wanx(Function.DESCRIPTION_EDIT_WITH_MASK, prompt="")
    assert build_wanx_body(masked) == {
        "model": "wanx2.1-imageedit",
        "input": {
            "function": "description_edit_with_mask",
            "prompt": "",
            "base_image_url": IMAGE,
            "mask_image_url": MASK,
        },
    }


def test_qwen_body_is_one_message_with_image_then_text() -> None:
    request = qwen(negative_prompt="blurry", parameters=EditParameters(watermark=False))
    assert build_qwen_body(request) == {
        "model": "qwen-image-edit",
        "input": {
            "messages": [{"role": "user", "content": [{"image": IMAGE}, {"text": "make it red"}]}]
        },
        "parameters": {"negative_prompt": "blurry", "watermark": False},
    }
    assert "parameters" not in build_qwen_body(qwen())
