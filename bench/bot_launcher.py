"""``python -m bot`` with the prepared-image cache resized, for the depth benchmark's what-if row.

``BENCH_PREPARED_CACHE_MB`` sets the byte bound of ``bot.jobs.inputs.PreparedCache`` (default
16 MB in the bot); everything else is the bot's own entry point.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("PTB_TIMEDELTA", "true")

from bot.__main__ import main
from bot.jobs import inputs

if __name__ == "__main__":
    megabytes = float(os.environ.get("BENCH_PREPARED_CACHE_MB", "64"))
    inputs.PreparedCache.__init__.__defaults__ = (int(megabytes * 1024 * 1024),)
    sys.exit(main())
