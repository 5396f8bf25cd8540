"""``python -m bot``: load the settings and run the bot with long polling until SIGTERM/SIGINT."""

from __future__ import annotations

import os
import sys

# Opt in to PTB's timedelta durations now: otherwise every RetryAfter (a flood wait) also emits a
# deprecation warning.
os.environ.setdefault("PTB_TIMEDELTA", "true")

from telegram import Update

from bot.app import build_application
from bot.config import load_settings
from bot.errors import ConfigError
from bot.logging_setup import setup_logging


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.secrets)
    application = build_application(settings)
    # run_polling installs SIGTERM/SIGINT handlers and stops cleanly; unfinished jobs stay in the
    # store and resume on the next start.
    application.run_polling(allowed_updates=Update.ALL_TYPES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
