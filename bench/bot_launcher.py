"""``python -m bot`` with the prepared-image cache resized, for the depth benchmark's what-if row.

``BENCH_PREPARED_CACHE_MB`` sets the byte bound of ``bot.pipeline.PreparedCache`` (default
64 MB in the bot); everything else is the bot's own entry point.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("PTB_TIMEDELTA", "true")

from bot import pipeline
from bot.__main__ import main

if __name__ == "__main__":
    megabytes = float(os.environ.get("BENCH_PREPARED_CACHE_MB", "64"))
    pipeline.PreparedCache.__init__.__defaults__ = (int(megabytes * 1024 * 1024),)
    sys.exit(main())
