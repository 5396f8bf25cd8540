"""Checks an :class:`EditRequest` against the API reference's limits before anything is sent.

Refusing locally costs nothing; the service would refuse the same request with a 400 after a
network round trip (and sometimes after queueing it behind our own rate limits).
"""

from __future__ import annotations

import math

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
from bot.errors import RequestValidationError

SCALE_FIELDS = ("top_scale", "bottom_scale", "left_scale", "right_scale")

# Parameters every wanx2.1-imageedit function takes (the parameter table has no function column).
WANX_COMMON_PARAMETERS = frozenset({"n", "seed", "watermark"})

# The function table's "特殊参数" column: a special parameter is only meaningful for its function.
FUNCTION_PARAMETERS: dict[Function, frozenset[str]] = {
    Function.STYLIZATION_ALL: frozenset({"strength"}),
    Function.STYLIZATION_LOCAL: frozenset(),
    Function.DESCRIPTION_EDIT: frozenset({"strength"}),
    Function.DESCRIPTION_EDIT_WITH_MASK: frozenset(),
    Function.REMOVE_WATERMARK: frozenset(),
    Function.EXPAND: frozenset(SCALE_FIELDS),
    Function.SUPER_RESOLUTION: frozenset({"upscale_factor"}),
    Function.COLORIZATION: frozenset(),
    Function.DOODLE: frozenset({"is_sketch"}),
    Function.CONTROL_CARTOON_FEATURE: frozenset(),
}

# qwen-image-edit's parameters object has only these two.
QWEN_PARAMETERS = frozenset({"watermark"})

# Our reading of the reference on empty prompts: `input.prompt` is marked required (必填) for
# every function, and the only place that explicitly allows it empty is description_edit_with_mask
# ("删除小元素：提示词可留空（prompt=""）"). remove_watermark, super_resolution and colorization
# only suggest generic prompts ("去除图像中的文字", "图像超分", "自动上色：不提供具体颜色描述" = a
# prompt without colours, not no prompt), so they still need one. qwen's `text` is required too.
EMPTY_PROMPT_ALLOWED = frozenset({Function.DESCRIPTION_EDIT_WITH_MASK})

MASK_REQUIRED = frozenset({Function.DESCRIPTION_EDIT_WITH_MASK})


def set_parameters(parameters: EditParameters) -> dict[str, object]:
    """The parameters that are set (not ``None``), by API name, in declaration order."""
    return {name: value for name, value in vars(parameters).items() if value is not None}


def validate_request(request: EditRequest) -> None:
    """Raise :class:`RequestValidationError` naming the first field that breaks the reference."""
    if request.model is Model.WANX_IMAGE_EDIT:
        _validate_wanx(request)
    elif request.model is Model.QWEN_IMAGE_EDIT:
        _validate_qwen(request)
    else:  # pragma: no cover - Model is a closed enum
        raise RequestValidationError("model", f"unknown model {request.model!r}")
    _validate_values(request.parameters)


def _validate_wanx(request: EditRequest) -> None:
    function = request.function
    if function is None:
        raise RequestValidationError("function", "required for wanx2.1-imageedit")
    if not isinstance(function, Function):
        raise RequestValidationError("function", f"unknown function {function!r}")
    _validate_prompt(request.prompt, empty_allowed=function in EMPTY_PROMPT_ALLOWED)
    if request.negative_prompt is not None:
        raise RequestValidationError("negative_prompt", "only qwen-image-edit takes it")
    _validate_image("base_image", request.base_image)
    if function in MASK_REQUIRED:
        if request.mask_image is None:
            raise RequestValidationError("mask_image", f"required for {function.value}")
        _validate_image("mask_image", request.mask_image)
    elif request.mask_image is not None:
        raise RequestValidationError("mask_image", f"{function.value} takes no mask")
    allowed = WANX_COMMON_PARAMETERS | FUNCTION_PARAMETERS[function]
    for name in set_parameters(request.parameters):
        if name not in allowed:
            raise RequestValidationError(name, f"{function.value} does not take it")


def _validate_qwen(request: EditRequest) -> None:
    if request.function is not None:
        raise RequestValidationError("function", "qwen-image-edit takes no function")
    _validate_prompt(request.prompt, empty_allowed=False)
    if request.negative_prompt is not None:
        if not isinstance(request.negative_prompt, str):
            raise RequestValidationError("negative_prompt", "must be text")
        if len(request.negative_prompt) > MAX_NEGATIVE_PROMPT_CHARS:
            raise RequestValidationError(
                "negative_prompt", f"longer than {MAX_NEGATIVE_PROMPT_CHARS} characters"
            )
    _validate_image("base_image", request.base_image)
    if request.mask_image is not None:
        raise RequestValidationError("mask_image", "qwen-image-edit takes no mask")
    for name in set_parameters(request.parameters):
        if name not in QWEN_PARAMETERS:
            raise RequestValidationError(name, "qwen-image-edit does not take it")


def _validate_prompt(prompt: str, *, empty_allowed: bool) -> None:
    if not isinstance(prompt, str):
        raise RequestValidationError("prompt", "must be text")
    if not prompt.strip() and not empty_allowed:
        raise RequestValidationError("prompt", "required")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise RequestValidationError("prompt", f"longer than {MAX_PROMPT_CHARS} characters")


def _validate_image(field: str, image: str) -> None:
    if not isinstance(image, str) or not image:
        raise RequestValidationError(field, "required")
    if not image.startswith(("data:", "http://", "https://")):
        raise RequestValidationError(field, "must be a data: URI or an http(s) URL")


def _validate_values(parameters: EditParameters) -> None:
    _check_int("n", parameters.n, N_RANGE)
    _check_int("seed", parameters.seed, SEED_RANGE)
    _check_int("upscale_factor", parameters.upscale_factor, UPSCALE_FACTOR_RANGE)
    _check_float("strength", parameters.strength, STRENGTH_RANGE)
    for name in SCALE_FIELDS:
        _check_float(name, getattr(parameters, name), EXPAND_SCALE_RANGE)
    for name in ("watermark", "is_sketch"):
        value = getattr(parameters, name)
        if value is not None and not isinstance(value, bool):
            raise RequestValidationError(name, "must be true or false")


def _check_int(name: str, value: int | None, bounds: tuple[int, int]) -> None:
    if value is None:
        return
    # bool is an int subclass; True as "n" is a bug, not a count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestValidationError(name, "must be an integer")
    low, high = bounds
    if not low <= value <= high:
        raise RequestValidationError(name, f"must be between {low} and {high}")


def _check_float(name: str, value: float | None, bounds: tuple[float, float]) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestValidationError(name, "must be a number")
    low, high = bounds
    if not math.isfinite(value) or not low <= value <= high:
        raise RequestValidationError(name, f"must be between {low} and {high}")
