"""Typed requests and results of the Bailian (DashScope) image-edit API."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Model(StrEnum):
    QWEN_IMAGE_EDIT = "qwen-image-edit"
    WANX_IMAGE_EDIT = "wanx2.1-imageedit"


class Function(StrEnum):
    """The ten functions of wanx2.1-imageedit (the API reference's function table)."""

    STYLIZATION_ALL = "stylization_all"
    STYLIZATION_LOCAL = "stylization_local"
    DESCRIPTION_EDIT = "description_edit"
    DESCRIPTION_EDIT_WITH_MASK = "description_edit_with_mask"
    REMOVE_WATERMARK = "remove_watermark"
    EXPAND = "expand"
    SUPER_RESOLUTION = "super_resolution"
    COLORIZATION = "colorization"
    DOODLE = "doodle"
    CONTROL_CARTOON_FEATURE = "control_cartoon_feature"


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_final(self) -> bool:
        return self not in (TaskStatus.PENDING, TaskStatus.RUNNING)


@dataclass(frozen=True)
class EditParameters:
    """The ``parameters`` object; ``None`` means "not sent" (the service default applies)."""

    n: int | None = None
    seed: int | None = None
    watermark: bool | None = None
    strength: float | None = None
    top_scale: float | None = None
    bottom_scale: float | None = None
    left_scale: float | None = None
    right_scale: float | None = None
    upscale_factor: int | None = None
    is_sketch: bool | None = None


@dataclass(frozen=True)
class EditRequest:
    """One image-edit request for either model.

    ``base_image`` and ``mask_image`` are what the API takes as image "URLs": we always pass
    ``data:{mime};base64,...`` URIs (a Telegram file URL carries the bot token).
    ``function`` is ``None`` for qwen-image-edit, required for wanx2.1-imageedit.
    """

    model: Model
    prompt: str
    base_image: str
    function: Function | None = None
    negative_prompt: str | None = None
    mask_image: str | None = None
    parameters: EditParameters = field(default_factory=EditParameters)


@dataclass(frozen=True)
class ImageFailure:
    """One image of a task that did not come out (partial failure)."""

    code: str
    message: str


@dataclass(frozen=True)
class TaskOutcome:
    """How a task ended: the result URLs, the images that failed, and what was billed."""

    task_id: str | None
    status: TaskStatus
    urls: tuple[str, ...] = ()
    failures: tuple[ImageFailure, ...] = ()
    image_count: int = 0
    request_id: str | None = None
    # Why a FAILED / CANCELED task ended (output.code / output.message); empty otherwise.
    code: str = ""
    message: str = ""
