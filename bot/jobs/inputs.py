"""The images a job sends: downloaded once, prepared for the model, checked before reserving."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from bot.bailian import validate_request
from bot.bailian.models import EditRequest, Model
from bot.commands import ParsedCommand, build_edit_request
from bot.images import (
    PreparedImage,
    expand_scales_for_ratio,
    looks_like_mask_async,
    prepare_image_async,
    prepare_mask_async,
)
from bot.masks import box_mask_async
from bot.ports import Messenger

# Placeholders used to validate a request's options before any image is fetched.
_PLACEHOLDER_IMAGE = "data:image/png;base64,"
_PLACEHOLDER_SCALES = (1.5, 1.5, 1.5, 1.5)
# Prepared inputs kept between acceptance and the worker, so a queued job usually needs no second
# download; bounded so a deep queue holds ids, not image bytes.
PREPARED_CACHE_BYTES = 16 * 1024 * 1024
# Downloaded files kept for the conversation around one request: /erase fetches the photo to
# check it, then each painted copy and the mask page need it again within minutes.
RAW_CACHE_BYTES = 24 * 1024 * 1024
# Images decoded at once: a 64-megapixel input takes ~256 MB while it is converted, and there
# are only two cores to share anyway.
PREPARE_CONCURRENCY = 2


T = TypeVar("T")


class _ByteBoundedLru(Generic[T]):
    """An LRU whose entries' sizes (``size_of``) add up to at most ``max_bytes``."""

    def __init__(self, max_bytes: int, size_of: Callable[[T], int]) -> None:
        self._max = max_bytes
        self._size_of = size_of
        self._size = 0
        self._items: OrderedDict[str, T] = OrderedDict()

    def get(self, key: str) -> T | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: str, item: T) -> None:
        if self._size_of(item) > self._max:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._size -= self._size_of(old)
        self._items[key] = item
        self._size += self._size_of(item)
        while self._size > self._max:
            _, evicted = self._items.popitem(last=False)
            self._size -= self._size_of(evicted)


class PreparedCache(_ByteBoundedLru[PreparedImage]):
    """Prepared inputs, keyed by (file id, model or mask size)."""

    def __init__(self, max_bytes: int = PREPARED_CACHE_BYTES) -> None:
        super().__init__(max_bytes, lambda image: len(image.data))


def check_options(parsed: ParsedCommand, *, with_mask: bool) -> None:
    """Validate the options against the API's limits before any image is fetched."""
    mask = _PLACEHOLDER_IMAGE if with_mask else None
    scales = _PLACEHOLDER_SCALES if parsed.ratio is not None else None
    validate_request(build_edit_request(parsed, _PLACEHOLDER_IMAGE, mask, scales))


def _mask_key(file_id: str, size: tuple[int, int]) -> str:
    return f"{file_id}|mask|{size[0]}x{size[1]}"


class Inputs:
    """Downloads and prepares input images and masks, each at most once while cached."""

    def __init__(self, messenger: Messenger, cache: PreparedCache | None = None) -> None:
        self._messenger = messenger
        self._cache = cache or PreparedCache()
        self._raw: _ByteBoundedLru[bytes] = _ByteBoundedLru(RAW_CACHE_BYTES, len)
        self._preparing = asyncio.Semaphore(PREPARE_CONCURRENCY)

    async def raw(self, file_id: str) -> bytes:
        """The file's bytes, downloaded at most once while they stay cached (a Telegram file id
        always names the same bytes)."""
        data = self._raw.get(file_id)
        if data is None:
            data = await self._messenger.download(file_id)
            self._raw.put(file_id, data)
        return data

    async def image(self, file_id: str, model: Model) -> PreparedImage:
        return await self._prepared(
            f"{file_id}|{model.value}", file_id, lambda raw: prepare_image_async(raw, model)
        )

    async def mask(self, file_id: str, size: tuple[int, int]) -> PreparedImage:
        return await self._prepared(
            _mask_key(file_id, size), file_id, lambda raw: prepare_mask_async(raw, size),
        )

    async def mask_if_mask_like(
        self, file_id: str, size: tuple[int, int]
    ) -> PreparedImage | None:
        """:meth:`mask`, or None without preparing when the image looks like a photo."""
        key = _mask_key(file_id, size)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        raw = await self.raw(file_id)
        async with self._preparing:
            if not await looks_like_mask_async(raw):
                return None
            prepared = await prepare_mask_async(raw, size)
        self._cache.put(key, prepared)
        return prepared

    async def check(
        self, parsed: ParsedCommand, input_file_id: str, mask_file_id: str | None = None,
        mask_png: bytes | None = None,
    ) -> None:
        """Everything that can be refused before reserving: options, image, mask, ratio.

        Raises RequestValidationError or ImageError.
        """
        await self.request(parsed, input_file_id, mask_file_id, mask_png)

    async def request(
        self, parsed: ParsedCommand, input_file_id: str, mask_file_id: str | None,
        mask_png: bytes | None = None,
    ) -> EditRequest:
        """The API request with its images attached, validated.

        The mask is the uploaded file, else the bytes the bot made (painted or drawn), else
        the request's ``box=`` regions drawn at the base image's size.
        """
        with_mask = mask_file_id is not None or mask_png is not None or bool(parsed.boxes)
        check_options(parsed, with_mask=with_mask)
        base = await self.image(input_file_id, parsed.spec.model)
        size = (base.width, base.height)
        mask: PreparedImage | None = None
        if mask_file_id is not None:
            mask = await self.mask(mask_file_id, size)
        elif mask_png is not None:
            mask = await prepare_mask_async(mask_png, size)
        elif parsed.boxes:
            mask = await prepare_mask_async(await box_mask_async(size, parsed.boxes), size)
        scales = None
        if parsed.ratio is not None:
            scales = expand_scales_for_ratio(base.width, base.height, *parsed.ratio)
        request = build_edit_request(
            parsed, base.data_uri(), mask.data_uri() if mask else None, scales
        )
        validate_request(request)
        return request

    async def _prepared(
        self, key: str, file_id: str, prepare: Callable[[bytes], Awaitable[PreparedImage]]
    ) -> PreparedImage:
        """Download and prepare once; later calls for the same key come from the cache."""
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        raw = await self.raw(file_id)
        async with self._preparing:
            prepared = await prepare(raw)
        self._cache.put(key, prepared)
        return prepared
