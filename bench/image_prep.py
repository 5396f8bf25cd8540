"""Image preparation vs the floor of one Pillow decode plus one encode (issue 6, item 4).

Run from the repo root: ``.venv/bin/python -m bench.image_prep``. Inputs: a 12-megapixel JPEG
(4000x3000) and a 4096x4096 PNG, photo-like (gradients and noise), each prepared for both
models with ``bot.images.prepare_image``. The floor decodes the same bytes once and encodes the
decoded image once, at its full size, in the format and with the options the preparation used
for its output (JPEG quality 92 optimized, or PNG level 6). Times are the best of ``--repeats``
runs, preparation and floor alternating; memory is the peak RSS growth of a fresh process
(``VmHWM`` reset before the step) while one step runs.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from bench.common import peak_rss_mb, photo_like, reset_peak_rss, rss_mb
from bot.bailian.models import Model
from bot.images import JPEG_QUALITIES, prepare_image


@dataclass(frozen=True)
class PrepCase:
    name: str
    raw: bytes
    model: Model


@dataclass(frozen=True)
class PrepResult:
    case: str
    model: str
    input_mb: float
    output: str  # format and size of what preparation produced
    prep_seconds: float
    floor_seconds: float
    prep_peak_mb: float
    floor_peak_mb: float

    @property
    def ratio(self) -> float:
        return self.prep_seconds / self.floor_seconds


def _floor(raw: bytes, fmt: str) -> bytes:
    """One decode and one encode of the same image, in ``fmt``."""
    image = Image.open(io.BytesIO(raw))
    image.load()
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITIES[0], optimize=True)
    else:
        image.save(out, "PNG", compress_level=6)
    return out.getvalue()


def _step(kind: str, raw: bytes, model: Model, fmt: str) -> float:
    """Run one step in this (fresh) process; the peak RSS growth it caused, in MB."""
    pid = multiprocessing.current_process().pid or 0
    before = rss_mb(pid)
    if not reset_peak_rss(pid):
        before = peak_rss_mb(pid)  # no reset: growth over the lifetime peak so far
    if kind == "prep":
        prepare_image(raw, model)
    else:
        _floor(raw, fmt)
    return max(0.0, peak_rss_mb(pid) - before)


def _peak_in_fresh_process(kind: str, raw: bytes, model: Model, fmt: str) -> float:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return float(pool.apply(_step, (kind, raw, model, fmt)))


def measure(case: PrepCase, repeats: int, memory: bool = True) -> PrepResult:
    prepared = prepare_image(case.raw, case.model)
    fmt = "PNG" if prepared.mime == "image/png" else "JPEG"
    prep_times: list[float] = []
    floor_times: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        prepare_image(case.raw, case.model)
        prep_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        _floor(case.raw, fmt)
        floor_times.append(time.perf_counter() - started)
    prep_peak = floor_peak = float("nan")
    if memory:
        prep_peak = _peak_in_fresh_process("prep", case.raw, case.model, fmt)
        floor_peak = _peak_in_fresh_process("floor", case.raw, case.model, fmt)
    passthrough = prepared.data == case.raw
    output = f"{fmt} {prepared.width}x{prepared.height}" + (" (as sent)" if passthrough else "")
    return PrepResult(
        case=case.name,
        model=case.model.value,
        input_mb=len(case.raw) / 1e6,
        output=output,
        prep_seconds=min(prep_times),
        floor_seconds=min(floor_times),
        prep_peak_mb=prep_peak,
        floor_peak_mb=floor_peak,
    )


def cases(quick: bool) -> list[PrepCase]:
    jpeg_size, png_size = ((800, 600), (819, 819)) if quick else ((4000, 3000), (4096, 4096))
    jpeg = photo_like(*jpeg_size, seed=1, fmt="JPEG")
    png = photo_like(*png_size, seed=2, fmt="PNG")
    jpeg_name = f"{jpeg_size[0] * jpeg_size[1] / 1e6:.0f} MP JPEG {jpeg_size[0]}x{jpeg_size[1]}"
    png_name = f"PNG {png_size[0]}x{png_size[1]}"
    return [
        PrepCase(name, raw, model)
        for name, raw in ((jpeg_name, jpeg), (png_name, png))
        for model in (Model.WANX_IMAGE_EDIT, Model.QWEN_IMAGE_EDIT)
    ]


def report(results: Sequence[PrepResult]) -> str:
    lines = [
        "## Image preparation vs one decode + one encode",
        "",
        "| input | model | output | prepare | floor | ratio | peak RSS prepare | peak RSS floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.case} ({r.input_mb:.1f} MB) | {r.model} | {r.output} | "
            f"{r.prep_seconds * 1000:.0f} ms | {r.floor_seconds * 1000:.0f} ms | {r.ratio:.2f} | "
            f"{r.prep_peak_mb:.0f} MB | {r.floor_peak_mb:.0f} MB |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[PrepResult]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small images, one repeat")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    results = [measure(case, repeats, memory=not args.quick) for case in cases(args.quick)]
    print(report(results), flush=True)
    return results


if __name__ == "__main__":
    main()

