"""The DashScope emulator over real sockets: protocol, validation, faults, images, statistics."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from bot.bailian.models import TaskStatus
from bot.offline.dashscope import (
    CANCEL_PATH,
    DashScopeEmulator,
    EmulatedTask,
    parse_args,
)
from tests.emulator_fixtures import (
    API_KEY,
    ASYNC_AUTH,
    AUTH,
    data_uri,
    halves,
    image_bytes,
    png_bytes,
    qwen_body,
    qwen_url,
    submit_url,
    task_url,
    wanx_body,
)

TIME_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}")


# --- fixtures and helpers ----------------------------------------------------------------------


@asynccontextmanager
async def running(**options: Any) -> AsyncIterator[DashScopeEmulator]:
    emulator = DashScopeEmulator(api_key=API_KEY, **options)
    await emulator.start()
    try:
        yield emulator
    finally:
        await emulator.close()


@pytest.fixture
async def emulator() -> AsyncIterator[DashScopeEmulator]:
    async with running() as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession, url: str, body: object, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    # aiohttp warns (ResourceWarning) about raw bodies over 1 MB: stream big ones from a buffer.
    payload = io.BytesIO(json.dumps(body).encode())
    sent = (ASYNC_AUTH if headers is None else headers) | {"Content-Type": "application/json"}
    async with http.post(url, data=payload, headers=sent) as response:
        return response.status, await response.json()


async def submit(
    http: aiohttp.ClientSession, emulator: DashScopeEmulator, body: dict[str, Any]
) -> str:
    status, answer = await post(http, submit_url(emulator), body)
    assert status == 200, answer
    assert answer["output"]["task_status"] == "PENDING"
    task_id: str = answer["output"]["task_id"]
    return task_id


async def query(
    http: aiohttp.ClientSession, emulator: DashScopeEmulator, task_id: str
) -> dict[str, Any]:
    async with http.get(task_url(emulator, task_id), headers=AUTH) as response:
        assert response.status == 200
        answer: dict[str, Any] = await response.json()
        return answer


async def run_task(
    http: aiohttp.ClientSession, emulator: DashScopeEmulator, body: dict[str, Any]
) -> dict[str, Any]:
    """Submit a zero-latency task and return its final query answer."""
    task_id = await submit(http, emulator, body)
    return await query(http, emulator, task_id)


async def download(http: aiohttp.ClientSession, url: str) -> Image.Image:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "image/png"
        image = Image.open(io.BytesIO(await response.read()))
        image.load()
        return image


async def edited(
    http: aiohttp.ClientSession, emulator: DashScopeEmulator, body: dict[str, Any]
) -> list[Image.Image]:
    answer = await run_task(http, emulator, body)
    assert answer["output"]["task_status"] == "SUCCEEDED", answer
    return [await download(http, result["url"]) for result in answer["output"]["results"]]


def mean(image: Image.Image, box: tuple[int, int, int, int]) -> tuple[float, ...]:
    return tuple(ImageStat.Stat(image.convert("RGB").crop(box)).mean)


def saturation(image: Image.Image) -> float:
    return float(ImageStat.Stat(image.convert("HSV").split()[1]).mean[0])


# --- protocol ----------------------------------------------------------------------------------


async def test_submit_then_query_has_the_real_services_shapes(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    task_id = await submit(http, emulator, wanx_body(n=2))
    answer = await query(http, emulator, task_id)

    output = answer["output"]
    assert answer["request_id"]
    assert output["task_id"] == task_id
    assert output["task_status"] == "SUCCEEDED"
    for key in ("submit_time", "scheduled_time", "end_time"):
        assert TIME_FORMAT.fullmatch(output[key]), output[key]
    assert output["task_metrics"] == {"TOTAL": 2, "SUCCEEDED": 2, "FAILED": 0}
    assert answer["usage"] == {"image_count": 2}
    assert len(output["results"]) == 2
    for result in output["results"]:
        parts = urlsplit(result["url"])
        assert f"{parts.scheme}://{parts.netloc}" == emulator.base_url
        assert parts.path.startswith(f"/results/{task_id}/")
        assert {"Expires", "Signature"} <= set(parse_qs(parts.query))


async def test_records_every_request_with_endpoint_body_headers_and_status(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    body = wanx_body()
    task_id = await submit(http, emulator, body)
    await query(http, emulator, task_id)
    async with http.get(emulator.base_url + "/nowhere") as response:
        assert response.status == 404

    submit_record, query_record, other = emulator.requests
    assert submit_record.endpoint == "submit"
    assert submit_record.method == "POST"
    assert submit_record.body == body
    assert submit_record.headers["X-DashScope-Async"] == "enable"
    assert submit_record.task_id == task_id
    assert submit_record.status == 200
    assert query_record.endpoint == "query"
    assert query_record.path == f"/api/v1/tasks/{task_id}"
    assert query_record.task_id == task_id
    assert query_record.body is None
    assert other.endpoint == "other"
    assert submit_record.received_at <= query_record.received_at <= other.received_at
    assert emulator.requests_to("query") == [query_record]
    assert emulator.tasks[task_id].request == body
    assert emulator.tasks[task_id].polls == 1


async def test_status_moves_pending_running_succeeded_with_the_clock(
    http: aiohttp.ClientSession,
) -> None:
    async with running(latency=(1.0, 1.0)) as emulator:
        task_id = await submit(http, emulator, wanx_body())
        task = emulator.tasks[task_id]
        assert task.due_at - task.submitted_at == pytest.approx(1.0)
        first = await query(http, emulator, task_id)
        assert first["output"]["task_status"] == "PENDING"
        assert "results" not in first["output"]
        await asyncio.sleep(max(0.0, task.submitted_at + 0.3 - time.monotonic()))
        running_answer = await query(http, emulator, task_id)
        assert running_answer["output"]["task_status"] == "RUNNING"
        assert task.final_seen_at is None
        await asyncio.sleep(max(0.0, task.due_at + 0.01 - time.monotonic()))
        final = await query(http, emulator, task_id)
        assert final["output"]["task_status"] == "SUCCEEDED"
        assert task.polls == 3
        assert task.final_seen_at is not None and task.final_seen_at >= task.due_at


def test_status_boundaries_follow_ten_percent_pending_then_running() -> None:
    task = EmulatedTask("t", {}, submitted_at=100.0, due_at=110.0)
    assert task.status_at(100.0) is TaskStatus.PENDING
    assert task.status_at(100.999) is TaskStatus.PENDING
    assert task.status_at(101.0) is TaskStatus.RUNNING
    assert task.status_at(109.999) is TaskStatus.RUNNING
    assert task.status_at(110.0) is TaskStatus.SUCCEEDED


async def test_latencies_are_drawn_from_the_range_and_repeat_with_the_seed(
    http: aiohttp.ClientSession,
) -> None:
    drawn: list[list[float]] = []
    for _ in range(2):
        async with running(latency=(0.5, 2.0), seed=7) as emulator:
            for _ in range(3):
                await submit(http, emulator, wanx_body())
            drawn.append([t.due_at - t.submitted_at for t in emulator.tasks.values()])
    assert drawn[0] == pytest.approx(drawn[1])
    assert all(0.5 <= latency <= 2.0 for latency in drawn[0])
    assert len(set(drawn[0])) == 3


async def test_unknown_task_id_answers_200_unknown(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    answer = await query(http, emulator, "no-such-task")
    assert answer["output"] == {"task_id": "no-such-task", "task_status": "UNKNOWN"}


# --- authentication and headers ----------------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", API_KEY])
@pytest.mark.parametrize("endpoint", ["submit", "query", "cancel", "qwen"])
async def test_a_missing_or_wrong_key_is_401_invalid_api_key(
    emulator: DashScopeEmulator,
    http: aiohttp.ClientSession,
    endpoint: str,
    authorization: str | None,
) -> None:
    headers = {"X-DashScope-Async": "enable"} if endpoint == "submit" else {}
    if authorization is not None:
        headers["Authorization"] = authorization
    url, method, body = {
        "submit": (submit_url(emulator), "POST", wanx_body()),
        "query": (task_url(emulator, "x"), "GET", None),
        "cancel": (emulator.base_url + CANCEL_PATH.format(task_id="x"), "POST", None),
        "qwen": (qwen_url(emulator), "POST", qwen_body()),
    }[endpoint]
    async with http.request(method, url, json=body, headers=headers) as response:
        assert response.status == 401
        answer = await response.json()
    assert answer["code"] == "InvalidApiKey"
    assert answer["request_id"]
    assert not emulator.tasks


async def test_submit_without_the_async_header_is_403_access_denied(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    status, answer = await post(http, submit_url(emulator), wanx_body(), headers=AUTH)
    assert status == 403
    assert answer["code"] == "AccessDenied"
    assert answer["message"] == "current user api does not support synchronous calls"


async def test_a_body_that_is_not_json_is_400(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    async with http.post(submit_url(emulator), data=b"not json", headers=ASYNC_AUTH) as response:
        assert response.status == 400
        assert (await response.json())["code"] == "InvalidParameter"


# --- validation --------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def set_parameter(name: str, value: object) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        body["parameters"][name] = value

    return mutate


def set_input(name: str, value: object) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        body["input"][name] = value

    return mutate


def drop_input(name: str) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        del body["input"][name]

    return mutate


def base_of(width: int, height: int) -> Mutation:
    return set_input("base_image_url", data_uri(png_bytes(width, height)))


def set_model(name: str) -> Mutation:
    def mutate(body: dict[str, Any]) -> None:
        body["model"] = name

    return mutate


SCALES = ["top_scale", "bottom_scale", "left_scale", "right_scale"]

# (mutation of a valid super_resolution body, field the 400 names or None when it is accepted)
WANX_CASES: list[tuple[str, Mutation, str | None]] = [
    ("model ok", set_model("wanx2.1-imageedit"), None),
    ("model wrong", set_model("wanx-v1"), "model"),
    ("model qwen", set_model("qwen-image-edit"), "model"),
    ("function unknown", set_input("function", "teleport"), "input.function"),
    ("function missing", drop_input("function"), "input.function"),
    ("prompt 800", set_input("prompt", "p" * 800), None),
    ("prompt 801", set_input("prompt", "p" * 801), "input.prompt"),
    ("prompt missing", drop_input("prompt"), "input.prompt"),
    ("prompt empty", set_input("prompt", ""), "input.prompt"),
    ("negative 500", set_input("negative_prompt", "n" * 500), None),
    ("negative 501", set_input("negative_prompt", "n" * 501), "input.negative_prompt"),
    ("negative param 501", set_parameter("negative_prompt", "n" * 501), "negative_prompt"),
    ("n 0", set_parameter("n", 0), "parameters.n"),
    ("n 1", set_parameter("n", 1), None),
    ("n 4", set_parameter("n", 4), None),
    ("n 5", set_parameter("n", 5), "parameters.n"),
    ("n text", set_parameter("n", "2"), "parameters.n"),
    ("n float", set_parameter("n", 2.5), "parameters.n"),
    ("seed -1", set_parameter("seed", -1), "parameters.seed"),
    ("seed 0", set_parameter("seed", 0), None),
    ("seed max", set_parameter("seed", 2147483647), None),
    ("seed max+1", set_parameter("seed", 2147483648), "parameters.seed"),
    ("strength -0.01", set_parameter("strength", -0.01), "parameters.strength"),
    ("strength 0", set_parameter("strength", 0), None),
    ("strength 1.0", set_parameter("strength", 1.0), None),
    ("strength 1.01", set_parameter("strength", 1.01), "parameters.strength"),
    ("upscale 0", set_parameter("upscale_factor", 0), "parameters.upscale_factor"),
    ("upscale 1", set_parameter("upscale_factor", 1), None),
    ("upscale 4", set_parameter("upscale_factor", 4), None),
    ("upscale 5", set_parameter("upscale_factor", 5), "parameters.upscale_factor"),
    ("watermark text", set_parameter("watermark", "yes"), "parameters.watermark"),
    ("is_sketch int", set_parameter("is_sketch", 1), "parameters.is_sketch"),
    ("unknown parameter ignored", set_parameter("size", "1024*1024"), None),
    *[(f"{s} 0.99", set_parameter(s, 0.99), f"parameters.{s}") for s in SCALES],
    *[(f"{s} 1.0", set_parameter(s, 1.0), None) for s in SCALES],
    *[(f"{s} 2.0", set_parameter(s, 2), None) for s in SCALES],
    *[(f"{s} 2.01", set_parameter(s, 2.01), f"parameters.{s}") for s in SCALES],
    ("base 511 wide", base_of(511, 600), "input.base_image_url"),
    ("base 512", base_of(512, 512), None),
    ("base 4096", base_of(4096, 512), None),
    ("base 4097 tall", base_of(512, 4097), "input.base_image_url"),
    ("base missing", drop_input("base_image_url"), "input.base_image_url"),
    ("base not an image", set_input("base_image_url", data_uri(b"hello")), "base_image_url"),
    ("base bad base64", set_input("base_image_url", "data:image/png;base64,@@@"), "base_image"),
    (
        "base gif",
        set_input(
            "base_image_url",
            data_uri(image_bytes(Image.new("RGB", (600, 600)), "GIF"), "image/gif"),
        ),
        "base_image_url",
    ),
    (
        "base jpeg",
        set_input(
            "base_image_url",
            data_uri(image_bytes(Image.new("RGB", (600, 600)), "JPEG"), "image/jpeg"),
        ),
        None,
    ),
    (
        "base webp",
        set_input(
            "base_image_url",
            data_uri(image_bytes(Image.new("RGB", (600, 600)), "WEBP"), "image/webp"),
        ),
        None,
    ),
    (
        "base bmp",
        set_input(
            "base_image_url",
            data_uri(image_bytes(Image.new("RGB", (600, 600)), "BMP"), "image/bmp"),
        ),
        None,
    ),
]


@pytest.mark.parametrize(
    ("mutation", "field"), [(m, f) for _, m, f in WANX_CASES], ids=[i for i, _, _ in WANX_CASES]
)
async def test_wanx_validation_at_the_boundaries(
    emulator: DashScopeEmulator,
    http: aiohttp.ClientSession,
    mutation: Mutation,
    field: str | None,
) -> None:
    body = wanx_body()
    mutation(body)
    status, answer = await post(http, submit_url(emulator), body)
    if field is None:
        assert status == 200, answer
        assert len(emulator.tasks) == 1
    else:
        assert status == 400
        assert answer["code"] == "InvalidParameter"
        assert field in answer["message"]
        assert not emulator.tasks


async def test_an_image_over_10_mb_is_refused_before_decoding(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    oversized = data_uri(b"\x89PNG" + os.urandom(10 * 1024 * 1024))
    status, answer = await post(http, submit_url(emulator), wanx_body(base=oversized))
    assert status == 400
    assert "input.base_image_url" in answer["message"]
    assert "10 MB" in answer["message"]


async def test_a_decompression_bomb_is_refused_by_its_header(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    huge = data_uri(image_bytes(Image.new("L", (9500, 9500), 0)))  # 90 M pixels, 90 kB of PNG
    status, answer = await post(http, submit_url(emulator), wanx_body(base=huge))
    assert (status, answer["code"]) == (400, "InvalidParameter")
    assert "input.base_image_url" in answer["message"]


async def test_a_url_that_is_not_a_data_uri_is_400_invalid_url(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    body = wanx_body(base="https://example.com/cat.png")
    status, answer = await post(http, submit_url(emulator), body)
    assert (status, answer["code"]) == (400, "InvalidURL")
    assert "input.base_image_url" in answer["message"]


@pytest.mark.parametrize(
    ("mask", "field"),
    [
        (None, "input.mask_image_url"),
        (data_uri(png_bytes(600, 601)), "input.mask_image_url"),
        (data_uri(png_bytes(600, 600, mode="L")), None),
    ],
    ids=["missing", "other resolution", "same resolution"],
)
async def test_masked_edit_needs_a_mask_of_the_base_resolution(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession, mask: str | None, field: str | None
) -> None:
    body = wanx_body("description_edit_with_mask", prompt="", mask=mask)
    status, answer = await post(http, submit_url(emulator), body)
    if field is None:
        assert status == 200, answer
    else:
        assert (status, answer["code"]) == (400, "InvalidParameter")
        assert field in answer["message"]


def qwen_image(width: int, height: int) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        body["input"]["messages"][0]["content"][0]["image"] = data_uri(png_bytes(width, height))

    return mutate


def qwen_text(text: str) -> Callable[[dict[str, Any]], None]:
    def mutate(body: dict[str, Any]) -> None:
        body["input"]["messages"][0]["content"][1]["text"] = text

    return mutate


def qwen_without_image(body: dict[str, Any]) -> None:
    del body["input"]["messages"][0]["content"][0]


QWEN_CASES: list[tuple[str, Mutation, str | None]] = [
    ("383", qwen_image(383, 500), "input.messages.content.image"),
    ("384", qwen_image(384, 384), None),
    ("3072", qwen_image(3072, 400), None),
    ("3073", qwen_image(400, 3073), "input.messages.content.image"),
    ("text 800", qwen_text("t" * 800), None),
    ("text 801", qwen_text("t" * 801), "input.messages.content.text"),
    ("text empty", qwen_text(""), "input.messages.content.text"),
    ("no image", qwen_without_image, "input.messages.content.image"),
    ("negative 500", set_parameter("negative_prompt", "n" * 500), None),
    ("negative 501", set_parameter("negative_prompt", "n" * 501), "parameters.negative_prompt"),
    ("watermark text", set_parameter("watermark", "no"), "parameters.watermark"),
    ("wrong model", set_model("wanx2.1-imageedit"), "model"),
]


@pytest.mark.parametrize(
    ("mutation", "field"), [(m, f) for _, m, f in QWEN_CASES], ids=[i for i, _, _ in QWEN_CASES]
)
async def test_qwen_validation_at_the_boundaries(
    emulator: DashScopeEmulator,
    http: aiohttp.ClientSession,
    mutation: Mutation,
    field: str | None,
) -> None:
    body = qwen_body()
    mutation(body)
    status, answer = await post(http, qwen_url(emulator), body, headers=AUTH)
    if field is None:
        assert status == 200, answer
    else:
        assert (status, answer["code"]) == (400, "InvalidParameter")
        assert field in answer["message"]


@pytest.mark.parametrize("where", ["prompt", "negative_prompt"])
async def test_the_content_trigger_is_refused_as_data_inspection_failed(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession, where: str
) -> None:
    trigger = DashScopeEmulator.CONTENT_TRIGGER
    body = wanx_body(prompt=f"a {trigger} picture" if where == "prompt" else "fine")
    if where == "negative_prompt":
        body["input"]["negative_prompt"] = trigger
    status, answer = await post(http, submit_url(emulator), body)
    assert (status, answer["code"]) == (400, "DataInspectionFailed")
    status, answer = await post(
        http, qwen_url(emulator), qwen_body(prompt=f"{trigger}!"), headers=AUTH
    )
    assert (status, answer["code"]) == (400, "DataInspectionFailed")
    assert not emulator.tasks


# --- qwen-image-edit ---------------------------------------------------------------------------


async def test_qwen_answers_synchronously_with_a_downloadable_image(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    body = qwen_body(image=data_uri(png_bytes(800, 500, (10, 200, 10))))
    status, answer = await post(http, qwen_url(emulator), body, headers=AUTH)
    assert status == 200, answer
    choice = answer["output"]["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    url = choice["message"]["content"][0]["image"]
    assert answer["usage"] == {"width": 800, "height": 500, "image_count": 1}
    image = await download(http, url)
    assert image.size == (800, 500)
    assert mean(image, (0, 0, 800, 500)) != pytest.approx((10, 200, 10), abs=5)
    assert emulator.requests_to("qwen")[0].status == 200


async def test_qwen_honours_its_latency_and_refuses_the_async_header(
    http: aiohttp.ClientSession,
) -> None:
    async with running(qwen_latency=0.3) as emulator:
        started = time.monotonic()
        status, _ = await post(http, qwen_url(emulator), qwen_body(), headers=AUTH)
        assert status == 200
        assert time.monotonic() - started >= 0.3
        status, answer = await post(http, qwen_url(emulator), qwen_body(), headers=ASYNC_AUTH)
        assert (status, answer["code"]) == (403, "AccessDenied")


# --- cancel ------------------------------------------------------------------------------------


async def test_only_a_pending_task_can_be_canceled(http: aiohttp.ClientSession) -> None:
    async with running(latency=(30.0, 30.0)) as emulator:
        task_id = await submit(http, emulator, wanx_body())
        cancel = emulator.base_url + CANCEL_PATH.format(task_id=task_id)
        status, answer = await post(http, cancel, None, headers=AUTH)
        assert status == 200 and answer["request_id"]
        final = await query(http, emulator, task_id)
        assert final["output"]["task_status"] == "CANCELED"
        assert "end_time" in final["output"]
        status, answer = await post(http, cancel, None, headers=AUTH)
        assert (status, answer["code"]) == (400, "UnsupportedOperation")
        unknown = emulator.base_url + CANCEL_PATH.format(task_id="nope")
        status, answer = await post(http, unknown, None, headers=AUTH)
        assert (status, answer["code"]) == (400, "UnsupportedOperation")
        assert emulator.max_tasks_in_progress() == 1
        assert emulator.tasks_in_progress() == 0


async def test_a_running_task_cannot_be_canceled(http: aiohttp.ClientSession) -> None:
    async with running(latency=(1.0, 1.0)) as emulator:
        task_id = await submit(http, emulator, wanx_body())
        await asyncio.sleep(0.15)
        cancel = emulator.base_url + CANCEL_PATH.format(task_id=task_id)
        status, answer = await post(http, cancel, None, headers=AUTH)
        assert (status, answer["code"]) == (400, "UnsupportedOperation")
        assert emulator.tasks[task_id].canceled_at is None


# --- scripted outcomes -------------------------------------------------------------------------


async def test_scripted_failure_is_http_200_failed_with_code_and_message(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.script_next_task("failed", code="InternalError.Algo", message="read image error")
    failed = await run_task(http, emulator, wanx_body())
    output = failed["output"]
    assert output["task_status"] == "FAILED"
    assert (output["code"], output["message"]) == ("InternalError.Algo", "read image error")
    assert "results" not in output
    normal = await run_task(http, emulator, wanx_body())
    assert normal["output"]["task_status"] == "SUCCEEDED"


async def test_scripted_partial_failure_keeps_the_good_images_only(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.script_next_task(
        "partial", code="InternalError.Timeout", message="timeout", failed_images=2
    )
    answer = await run_task(http, emulator, wanx_body(n=3))
    output = answer["output"]
    assert output["task_status"] == "SUCCEEDED"
    results = output["results"]
    assert [("url" in r) for r in results] == [True, False, False]
    assert results[1] == {"code": "InternalError.Timeout", "message": "timeout"}
    assert output["task_metrics"] == {"TOTAL": 3, "SUCCEEDED": 1, "FAILED": 2}
    assert answer["usage"] == {"image_count": 1}
    await download(http, results[0]["url"])
    task_id = output["task_id"]
    stolen = emulator.result_url(task_id, 1)
    async with http.get(stolen) as response:
        assert response.status == 404


@pytest.mark.parametrize(("outcome", "status"), [("unknown", "UNKNOWN"), ("canceled", "CANCELED")])
async def test_scripted_unknown_and_canceled_outcomes(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession, outcome: str, status: str
) -> None:
    emulator.script_next_task(outcome)
    answer = await run_task(http, emulator, wanx_body())
    assert answer["output"]["task_status"] == status
    assert "results" not in answer["output"]


def test_unknown_outcomes_and_endpoints_are_rejected() -> None:
    emulator = DashScopeEmulator()
    with pytest.raises(ValueError, match="outcome"):
        emulator.script_next_task("exploded")
    with pytest.raises(ValueError, match="endpoint"):
        emulator.fail_next("download", 500, "InternalError")


# --- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["submit", "query", "cancel", "qwen", "result"])
async def test_fail_next_answers_a_flat_error_once_per_time(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession, endpoint: str
) -> None:
    task_id = await submit(http, emulator, wanx_body())
    answer = await query(http, emulator, task_id)
    result_url = answer["output"]["results"][0]["url"]
    emulator.fail_next(endpoint, 500, "InternalError", "boom", times=2)
    requests = {
        "submit": ("POST", submit_url(emulator), wanx_body(), ASYNC_AUTH),
        "query": ("GET", task_url(emulator, task_id), None, AUTH),
        "cancel": ("POST", emulator.base_url + CANCEL_PATH.format(task_id="x"), None, AUTH),
        "qwen": ("POST", qwen_url(emulator), qwen_body(), AUTH),
        "result": ("GET", result_url, None, {}),
    }
    method, url, body, headers = requests[endpoint]
    other_method, other_url, other_body, other_headers = requests[
        "query" if endpoint != "query" else "submit"
    ]
    async with http.request(other_method, other_url, json=other_body, headers=other_headers) as r:
        assert r.status == 200  # a fault for another endpoint is not consumed
    for _ in range(2):
        async with http.request(method, url, json=body, headers=headers) as response:
            assert response.status == 500
            answer = await response.json()
        assert (answer["code"], answer["message"]) == ("InternalError", "boom")
        assert answer["request_id"]
    async with http.request(method, url, json=body, headers=headers) as response:
        assert response.status != 500


async def test_fail_next_nested_body_and_retry_after_header(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.fail_next("any", 429, "Throttling", "slow down", retry_after=1.5, nested=True)
    async with http.get(task_url(emulator, "x"), headers=AUTH) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "1.5"
        answer = await response.json()
    assert answer["error"] == {"code": "Throttling", "message": "slow down"}
    assert "code" not in answer
    answer = await query(http, emulator, "x")
    assert answer["output"]["task_status"] == "UNKNOWN"


async def test_faults_are_consumed_in_order(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.fail_next("query", 503, "ServiceUnavailable")
    emulator.fail_next("any", 504, "GatewayTimeout")
    statuses = []
    for _ in range(3):
        async with http.get(task_url(emulator, "x"), headers=AUTH) as response:
            statuses.append(response.status)
    assert statuses == [503, 504, 200]


async def test_slow_next_holds_the_answer(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.slow_next("query", 0.3)
    started = time.monotonic()
    await query(http, emulator, "x")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await query(http, emulator, "x")
    assert time.monotonic() - started < 0.3


async def test_drop_next_cuts_the_connection_but_the_submit_takes_effect(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.drop_next("submit")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(http, submit_url(emulator), wanx_body())
    assert len(emulator.tasks) == 1
    assert emulator.requests_to("submit")[0].status is None


async def test_drop_after_headers_leaves_a_truncated_body(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.drop_next("query", after_headers=True)
    async with http.get(task_url(emulator, "x"), headers=AUTH) as response:
        assert response.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_non_json_next_answers_an_html_page(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.non_json_next("submit", status=502)
    async with http.post(submit_url(emulator), json=wanx_body(), headers=ASYNC_AUTH) as response:
        assert response.status == 502
        assert response.content_type == "text/html"
        text = await response.text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    assert not emulator.tasks


# --- result URLs -------------------------------------------------------------------------------


async def test_result_urls_need_their_intact_unexpired_signature(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    answer = await run_task(http, emulator, wanx_body())
    url = answer["output"]["results"][0]["url"]
    task_id = answer["output"]["task_id"]
    await download(http, url)
    bare = url.split("?", 1)[0]
    tampered = re.sub(r"Signature=[^&]+", "Signature=AAAA", url)
    past = emulator.result_url(task_id, 0, expires=int(time.time()) - 1)
    later = emulator.result_url(task_id, 0, expires=int(time.time()) + 60)
    for refused in (bare, tampered, past):
        async with http.get(refused) as response:
            assert response.status == 403
            assert "<Code>" in await response.text()
    await download(http, later)
    async with http.get(emulator.result_url(task_id, 7)) as response:
        assert response.status == 404


async def test_result_url_expiry_follows_result_ttl(http: aiohttp.ClientSession) -> None:
    async with running(result_ttl=-5) as emulator:
        answer = await run_task(http, emulator, wanx_body())
        async with http.get(answer["output"]["results"][0]["url"]) as response:
            assert response.status == 403
            assert "expired" in await response.text()


async def test_results_of_an_unfinished_task_are_not_served(http: aiohttp.ClientSession) -> None:
    async with running(latency=(30.0, 30.0)) as emulator:
        task_id = await submit(http, emulator, wanx_body())
        async with http.get(emulator.result_url(task_id, 0)) as response:
            assert response.status == 404


# --- the images --------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [1, 2, 3])
async def test_super_resolution_multiplies_the_size(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession, factor: int
) -> None:
    base = data_uri(png_bytes(600, 520, (30, 160, 90)))
    body = wanx_body("super_resolution", base=base, upscale_factor=factor)
    (image,) = await edited(http, emulator, body)
    assert image.size == (600 * factor, 520 * factor)
    assert mean(image, (0, 0, *image.size)) == pytest.approx((30, 160, 90), abs=8)


async def test_expand_grows_the_canvas_and_fills_it_from_the_edges(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    picture = halves(600, 600, left=(255, 0, 0), right=(0, 0, 255))
    body = wanx_body(
        "expand",
        base=data_uri(image_bytes(picture)),
        left_scale=1.5,
        right_scale=2.0,
        top_scale=1.0,
        bottom_scale=1.25,
    )
    (image,) = await edited(http, emulator, body)
    assert image.size == (600 + 300 + 600, 600 + 150)
    original = image.crop((300, 0, 900, 600))
    assert ImageChops.difference(original, picture).getbbox() is None
    red, _, blue = mean(image, (0, 100, 200, 500))  # new area left of the red half
    assert red > 150 and blue < 100
    red, _, blue = mean(image, (1100, 100, 1500, 500))  # new area right of the blue half
    assert blue > 150 and red < 100


async def test_colorization_turns_grey_into_colour(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    grey = Image.linear_gradient("L").resize((600, 600)).convert("RGB")
    assert saturation(grey) == 0
    (image,) = await edited(
        http, emulator, wanx_body("colorization", base=data_uri(image_bytes(grey)))
    )
    assert image.size == (600, 600)
    assert saturation(image) > 40


@pytest.mark.parametrize(
    "function",
    ["stylization_all", "stylization_local", "description_edit", "control_cartoon_feature"],
)
async def test_style_and_instruction_edits_visibly_change_the_image(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession, function: str
) -> None:
    picture = halves(640, 512, left=(200, 180, 40), right=(40, 90, 200))
    (image,) = await edited(
        http, emulator, wanx_body(function, base=data_uri(image_bytes(picture)))
    )
    assert image.size == picture.size
    difference = ImageStat.Stat(ImageChops.difference(image.convert("RGB"), picture)).mean
    assert sum(difference) / 3 > 10


async def test_stylization_strength_controls_how_far_it_goes(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    picture = halves(600, 600)
    changes = []
    for strength in (0.0, 1.0):
        body = wanx_body(
            "stylization_all", base=data_uri(image_bytes(picture)), strength=strength, seed=5
        )
        (image,) = await edited(http, emulator, body)
        changes.append(sum(ImageStat.Stat(ImageChops.difference(image, picture)).mean))
    assert changes[1] > changes[0]


async def test_masked_edit_changes_only_the_white_area(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    picture = halves(600, 600, left=(250, 250, 250), right=(20, 120, 20))
    mask = Image.new("L", (600, 600), 0)
    ImageDraw.Draw(mask).rectangle((100, 100, 299, 299), fill=255)
    body = wanx_body(
        "description_edit_with_mask",
        prompt="a vase",
        base=data_uri(image_bytes(picture)),
        mask=data_uri(image_bytes(mask)),
    )
    (image,) = await edited(http, emulator, body)
    changed = ImageChops.difference(image.convert("RGB"), picture).getbbox()
    assert changed == (100, 100, 300, 300)
    assert sum(mean(image, (110, 110, 290, 290))) / 3 < 200


async def test_remove_watermark_wipes_thin_strokes(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    picture = Image.new("RGB", (600, 600), (240, 240, 240))
    ImageDraw.Draw(picture).line((50, 300, 550, 300), fill=(0, 0, 0), width=1)
    body = wanx_body("remove_watermark", base=data_uri(image_bytes(picture)))
    (image,) = await edited(http, emulator, body)
    assert image.size == (600, 600)
    assert min(mean(image, (60, 299, 540, 302))) > 200


@pytest.mark.parametrize("is_sketch", [False, True])
async def test_doodle_draws_from_line_art(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession, is_sketch: bool
) -> None:
    if is_sketch:
        picture = Image.new("RGB", (600, 600), (255, 255, 255))
        ImageDraw.Draw(picture).line((300, 0, 300, 599), fill=(0, 0, 0), width=4)
    else:
        picture = halves(600, 600, left=(0, 0, 0), right=(255, 255, 255))
    body = wanx_body("doodle", base=data_uri(image_bytes(picture)), is_sketch=is_sketch)
    (image,) = await edited(http, emulator, body)
    grey = image.convert("L")
    line = sum(mean(grey, (297, 100, 303, 500)))
    paper_left = sum(mean(grey, (50, 100, 250, 500)))
    paper_right = sum(mean(grey, (350, 100, 550, 500)))
    assert paper_left > 150 and paper_right > 150  # both halves are paper, even the black one
    assert line < paper_left - 40


async def test_n_images_differ_and_a_seed_repeats_them(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    picture = data_uri(image_bytes(halves(600, 600)))
    first = await edited(http, emulator, wanx_body("description_edit", base=picture, n=3, seed=42))
    assert len(first) == 3
    as_bytes = [image.tobytes() for image in first]
    assert len(set(as_bytes)) == 3
    again = await edited(http, emulator, wanx_body("description_edit", base=picture, n=3, seed=42))
    assert [image.tobytes() for image in again] == as_bytes


async def test_watermark_stamps_the_corner(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    picture = data_uri(png_bytes(600, 600, (0, 0, 0)))
    (plain,) = await edited(http, emulator, wanx_body(base=picture))
    (marked,) = await edited(http, emulator, wanx_body(base=picture, watermark=True))
    assert ImageChops.difference(plain, marked).getbbox() is not None
    assert sum(mean(marked, (520, 580, 590, 590))) > sum(mean(plain, (520, 580, 590, 590)))


# --- statistics and server caps ----------------------------------------------------------------


async def test_max_requests_in_window_counts_api_requests_only(
    emulator: DashScopeEmulator, http: aiohttp.ClientSession
) -> None:
    answer = await run_task(http, emulator, wanx_body())
    await download(http, answer["output"]["results"][0]["url"])
    for _ in range(3):
        await query(http, emulator, "x")
    assert emulator.max_requests_in_window() == 5
    assert emulator.max_requests_in_window(endpoints={"submit"}) == 1
    assert emulator.max_requests_in_window(endpoints={"result"}) == 1
    await asyncio.sleep(0.5)
    await query(http, emulator, "x")
    assert emulator.max_requests_in_window(window=0.45) == 5
    assert emulator.max_requests_in_window(window=10) == 6


async def test_max_tasks_in_progress_measures_overlap(http: aiohttp.ClientSession) -> None:
    async with running(latency=(0.6, 0.6)) as emulator:
        for _ in range(3):
            await submit(http, emulator, wanx_body())
        assert emulator.max_tasks_in_progress() == 3
        assert emulator.tasks_in_progress() == 3
        await asyncio.sleep(0.65)
        await submit(http, emulator, wanx_body())
        assert emulator.max_tasks_in_progress() == 3
        assert emulator.tasks_in_progress() == 1


async def test_server_max_tasks_refuses_with_rate_quota(http: aiohttp.ClientSession) -> None:
    async with running(latency=(0.6, 0.6), server_max_tasks=2) as emulator:
        await submit(http, emulator, wanx_body())
        await submit(http, emulator, wanx_body())
        status, answer = await post(http, submit_url(emulator), wanx_body())
        assert (status, answer["code"]) == (429, "Throttling.RateQuota")
        assert len(emulator.tasks) == 2
        await asyncio.sleep(0.65)
        await submit(http, emulator, wanx_body())
        assert emulator.max_tasks_in_progress() == 2


async def test_server_qps_refuses_with_rate_quota(http: aiohttp.ClientSession) -> None:
    async with running(server_qps=2) as emulator:
        await submit(http, emulator, wanx_body())
        await query(http, emulator, "x")
        async with http.get(task_url(emulator, "x"), headers=AUTH) as response:
            assert response.status == 429
            assert (await response.json())["code"] == "Throttling.RateQuota"
        await asyncio.sleep(1.0)
        await submit(http, emulator, wanx_body())
        assert [r.status for r in emulator.requests] == [200, 200, 429, 200]


async def test_server_qps_can_be_limited_to_submissions(http: aiohttp.ClientSession) -> None:
    async with running(server_qps=1, qps_endpoints={"submit"}) as emulator:
        await submit(http, emulator, wanx_body())
        for _ in range(3):
            await query(http, emulator, "x")
        status, answer = await post(http, submit_url(emulator), wanx_body())
        assert (status, answer["code"]) == (429, "Throttling.RateQuota")


# --- command line ------------------------------------------------------------------------------


def test_parse_args_defaults_and_api_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    args = parse_args(["--port", "9000", "--latency", "0.5", "2"])
    assert (args.host, args.port, args.api_key) == ("127.0.0.1", 9000, "emulator-key")
    assert args.latency == [0.5, 2.0]
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-from-env")
    assert parse_args([]).api_key == "sk-from-env"
    assert parse_args(["--api-key", "k"]).api_key == "k"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_the_module_serves_until_interrupted(http: aiohttp.ClientSession) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.offline.dashscope",
        "--port",
        str(port),
        "--api-key",
        "cli-key",
        "--latency",
        "0",
        "0",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1/tasks/x"
        for _ in range(100):
            try:
                async with http.get(url, headers={"Authorization": "Bearer cli-key"}) as r:
                    assert r.status == 200
                    assert (await r.json())["output"]["task_status"] == "UNKNOWN"
                    break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("the emulator did not start")
        process.send_signal(2)  # SIGINT, i.e. Ctrl-C
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=10)
        assert process.returncode == 0
        assert b"cli-key" not in stderr
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
