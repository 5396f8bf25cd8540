"""The images a job sends: downloaded once, prepared for the model, checked before reserving."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

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
# Images decoded at once: a 64-megapixel input takes ~256 MB while it is converted, and there
# are only two cores to share anyway.
PREPARE_CONCURRENCY = 2


class PreparedCache:
    """A byte-bounded LRU of prepared inputs, keyed by (file id, model or mask size)."""

    def __init__(self, max_bytes: int = PREPARED_CACHE_BYTES) -> None:
        self._max = max_bytes
        self._size = 0
        self._items: OrderedDict[str, PreparedImage] = OrderedDict()

    def get(self, key: str) -> PreparedImage | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: str, image: PreparedImage) -> None:
        if len(image.data) > self._max:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._size -= len(old.data)
        self._items[key] = image
        self._size += len(image.data)
        while self._size > self._max:
            _, evicted = self._items.popitem(last=False)
            self._size -= len(evicted.data)


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
        self._preparing = asyncio.Semaphore(PREPARE_CONCURRENCY)

    async def image(self, file_id: str, model: Model) -> PreparedImage:
        return await self._prepared(
            f"{file_id}|{model.value}", file_id, lambda raw: prepare_image_async(raw, model)
        )

    async def mask(self, file_id: str, size: tuple[int, int]) -> PreparedImage:
        return await self._prepared(
            _mask_key(file_id, size), file_id, lambda raw: prepare_mask_async(raw, size),
        )

    async def mask_if_mask_like(
        self, file_id: str, size: tuple[int, int], *, raw: bytes | None = None
    ) -> PreparedImage | None:
        """:meth:`mask`, or None without preparing when the image looks like a photo; ``raw``
        is the file's bytes if the caller downloaded them already."""
        key = _mask_key(file_id, size)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if raw is None:
            raw = await self._messenger.download(file_id)
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
        raw = await self._messenger.download(file_id)
        async with self._preparing:
            prepared = await prepare(raw)
        self._cache.put(key, prepared)
        return prepared
