"""The official ``dashscope`` SDK, pointed at the emulator, proves it speaks the real protocol."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from collections.abc import Iterator
from http import HTTPStatus

import dashscope
import pytest
from dashscope import ImageSynthesis, MultiModalConversation
from PIL import Image

from bot.offline.dashscope import DashScopeEmulator
from tests.emulator_fixtures import (
    API_KEY,
    data_uri,
    emulator_in_thread,
    halves,
    image_bytes,
    png_bytes,
)

# Real-time windows and subprocesses: in the full run (`pytest`), not in the fast lane.
pytestmark = pytest.mark.slow


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[DashScopeEmulator]:
    """The emulator in its own thread; the SDK's base URL points at it."""
    served = DashScopeEmulator(api_key=API_KEY, latency=(0.3, 0.6), seed=3)
    with emulator_in_thread(served):
        root = f"{served.base_url}/api/v1"
        monkeypatch.setenv("DASHSCOPE_HTTP_BASE_URL", root)
        # The SDK read the variable when it was imported: set its module attribute as well.
        monkeypatch.setattr(dashscope, "base_http_api_url", root)
        try:
            yield served
        finally:
            dashscope.close_shared_sync_session()  # its pooled sockets must not leak


def fetch_png(url: str) -> Image.Image:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        image = Image.open(io.BytesIO(response.read()))
        image.load()
        return image


def test_sdk_submits_a_wanx_task_waits_and_downloads_the_result(
    emulator: DashScopeEmulator,
) -> None:
    base = data_uri(image_bytes(halves(600, 520)))
    task = ImageSynthesis.async_call(
        model="wanx2.1-imageedit",
        prompt="upscale it",
        function="super_resolution",
        base_image_url=base,
        n=2,
        upscale_factor=2,
        api_key=API_KEY,
    )
    assert task.status_code == HTTPStatus.OK, task
    assert task.output.task_status == "PENDING"

    done = ImageSynthesis.wait(task, api_key=API_KEY)

    assert done.status_code == HTTPStatus.OK, done
    assert done.output.task_status == "SUCCEEDED"
    assert done.usage.image_count == 2
    assert len(done.output.results) == 2
    image = fetch_png(done.output.results[0].url)
    assert image.size == (1200, 1040)
    (submitted,) = emulator.requests_to("submit")
    assert submitted.headers["X-DashScope-Async"] == "enable"
    assert submitted.body is not None
    assert submitted.body["parameters"] == {"n": 2, "upscale_factor": 2}
    assert emulator.tasks[task.output.task_id].final_seen_at is not None


def test_sdk_call_with_function_and_base_image_url(emulator: DashScopeEmulator) -> None:
    response = ImageSynthesis.call(
        model=ImageSynthesis.Models.wanx_2_1_imageedit,
        prompt="make it colourful",
        function="colorization",
        base_image_url=data_uri(png_bytes(640, 640, (128, 128, 128))),
        api_key=API_KEY,
    )
    assert response.status_code == HTTPStatus.OK, response
    assert response.output.task_status == "SUCCEEDED"
    image = fetch_png(response.output.results[0].url).convert("RGB")
    red, green, blue = image.getpixel((320, 320))
    assert len({red, green, blue}) > 1  # grey in, colour out


def test_sdk_sees_validation_errors_as_the_service_sends_them(
    emulator: DashScopeEmulator,
) -> None:
    response = ImageSynthesis.async_call(
        model="wanx2.1-imageedit",
        prompt="x",
        function="super_resolution",
        base_image_url=data_uri(png_bytes(600, 600)),
        upscale_factor=9,
        api_key=API_KEY,
    )
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.code == "InvalidParameter"
    assert "parameters.upscale_factor" in response.message

    refused = ImageSynthesis.async_call(
        model="wanx2.1-imageedit",
        prompt="x",
        function="super_resolution",
        base_image_url=data_uri(png_bytes(600, 600)),
        api_key="wrong",
    )
    assert refused.status_code == HTTPStatus.UNAUTHORIZED
    assert refused.code == "InvalidApiKey"


def test_sdk_wait_reports_a_failed_task(emulator: DashScopeEmulator) -> None:
    emulator.script_next_task("failed", message="oss download error")
    response = ImageSynthesis.call(
        model="wanx2.1-imageedit",
        prompt="x",
        function="remove_watermark",
        base_image_url=data_uri(png_bytes(600, 600)),
        api_key=API_KEY,
    )
    assert response.status_code == HTTPStatus.OK
    assert response.output.task_status == "FAILED"
    assert response.output.code == "InternalError.Algo"
    assert response.output.message == "oss download error"


def test_sdk_calls_qwen_image_edit(emulator: DashScopeEmulator) -> None:
    messages = [
        {
            "role": "user",
            "content": [{"image": data_uri(png_bytes(700, 400))}, {"text": "add a red hat"}],
        }
    ]
    response = MultiModalConversation.call(
        model="qwen-image-edit", messages=messages, api_key=API_KEY, watermark=False
    )
    assert response.status_code == HTTPStatus.OK, response
    url = response.output.choices[0].message.content[0]["image"]
    assert response.usage.width == 700
    assert response.usage.height == 400
    assert fetch_png(url).size == (700, 400)
    (call,) = emulator.requests_to("qwen")
    assert call.body is not None and call.body["model"] == "qwen-image-edit"
    with pytest.raises(urllib.error.HTTPError) as refused:
        fetch_png(url.split("?", 1)[0])
    assert refused.value.code == 403
    refused.value.close()
