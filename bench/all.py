"""Every benchmark of issue 6 in one run: ``.venv/bin/python -m bench.all [--quick]``.

Slots, SDK comparison, lag and its curve (``bench.slots``, about 2 minutes), image preparation
(``bench.image_prep``, about 30 s) and the bot process at depth and end to end
(``bench.bot_process``, about 1.5 minutes). ``--quick`` is the seconds-long smoke run the test
suite uses; its figures only show that the scripts work.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from bench import bot_process, image_prep, slots


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    args = parser.parse_args(argv)
    passed = ["--quick"] if args.quick else []
    started = time.monotonic()
    slots.main(passed)
    print()
    image_prep.main(passed)
    print()
    # The what-if row (prepared-image cache bounded to 16 MB) shows what closes the depth gap.
    bot_process.main(passed or ["--cache-mb", "16"])
    print(f"\nall benchmarks: {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
