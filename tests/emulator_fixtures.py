"""Helpers for tests against the DashScope emulator: images, request bodies, a threaded host."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from PIL import Image, ImageDraw

from bot.offline.dashscope import QWEN_PATH, SUBMIT_PATH, DashScopeEmulator

API_KEY = "test-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
ASYNC_AUTH = AUTH | {"X-DashScope-Async": "enable"}

Colour = tuple[int, int, int]


def png_bytes(
    width: int = 600, height: int = 600, colour: Colour = (120, 120, 120), mode: str = "RGB"
) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), colour if mode == "RGB" else colour[0]).save(buffer, "PNG")
    return buffer.getvalue()


def image_bytes(image: Image.Image, image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def halves(
    width: int = 600, height: int = 600, left: Colour = (255, 0, 0), right: Colour = (0, 0, 255)
) -> Image.Image:
    """An image whose left half is one colour and right half another."""
    image = Image.new("RGB", (width, height), right)
    ImageDraw.Draw(image).rectangle((0, 0, width // 2 - 1, height - 1), fill=left)
    return image


def wanx_body(
    function: str = "super_resolution",
    *,
    prompt: str = "make it better",
    base: str | None = None,
    mask: str | None = None,
    **parameters: Any,
) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "function": function,
        "prompt": prompt,
        "base_image_url": base if base is not None else data_uri(png_bytes()),
    }
    if mask is not None:
        inputs["mask_image_url"] = mask
    return {"model": "wanx2.1-imageedit", "input": inputs, "parameters": parameters}


def qwen_body(
    *, prompt: str = "add a hat", image: str | None = None, **parameters: Any
) -> dict[str, Any]:
    content = [{"image": image if image is not None else data_uri(png_bytes())}, {"text": prompt}]
    return {
        "model": "qwen-image-edit",
        "input": {"messages": [{"role": "user", "content": content}]},
        "parameters": parameters,
    }


def submit_url(emulator: DashScopeEmulator) -> str:
    return emulator.base_url + SUBMIT_PATH


def qwen_url(emulator: DashScopeEmulator) -> str:
    return emulator.base_url + QWEN_PATH


def task_url(emulator: DashScopeEmulator, task_id: str) -> str:
    return f"{emulator.base_url}/api/v1/tasks/{task_id}"


@contextmanager
def emulator_in_thread(emulator: DashScopeEmulator) -> Iterator[DashScopeEmulator]:
    """Serve ``emulator`` from its own event loop in a thread, for synchronous clients."""
    ready = threading.Event()
    loop_box: list[asyncio.AbstractEventLoop] = []
    stop_box: list[asyncio.Event] = []
    errors: list[BaseException] = []

    async def serve() -> None:
        stop = asyncio.Event()
        loop_box.append(asyncio.get_running_loop())
        stop_box.append(stop)
        try:
            await emulator.start()
        except BaseException as exc:
            errors.append(exc)
            ready.set()
            raise
        ready.set()
        try:
            await stop.wait()
        finally:
            await emulator.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(timeout=10)
    if errors:
        thread.join(timeout=10)
        raise RuntimeError("the emulator did not start") from errors[0]
    try:
        yield emulator
    finally:
        loop_box[0].call_soon_threadsafe(stop_box[0].set)
        thread.join(timeout=10)
