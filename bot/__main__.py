"""``python -m bot``: load the settings and run the bot with long polling until SIGTERM/SIGINT.

The exit status names the cause of a stop (:class:`bot.startup.ExitCode`): 0 stopped by a signal,
2 configuration, 3 token rejected, 4 Telegram unreachable, 5 database, 1 anything else.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Mapping
from pathlib import Path

# Opt in to PTB's timedelta durations now: otherwise every RetryAfter (a flood wait) also emits a
# deprecation warning.
os.environ.setdefault("PTB_TIMEDELTA", "true")

from bot.app import build_application
from bot.backup_command import backup_command
from bot.config import load_settings, read_dotenv
from bot.errors import ConfigError
from bot.logging_setup import SecretMaskingFilter, setup_logging
from bot.startup import ExitCode, run

# Masked in a configuration error too: a secret pasted into the wrong variable is quoted there.
SECRET_VARIABLES = ("TELEGRAM_BOT_TOKEN", "DASHSCOPE_API_KEY", "WEBHOOK_SECRET")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Run the bot.")
    commands = parser.add_subparsers(dest="command")
    backup = commands.add_parser("backup", help="copy the SQLite database while the bot runs")
    backup.add_argument("path", type=Path, help="the file to write the copy to")
    args = parser.parse_args(argv)
    if args.command == "backup":
        return backup_command(args.path)
    try:
        settings = load_settings()
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        print(f"Configuration error: {_mask_secret_variables(str(exc))}", file=sys.stderr)
        return ExitCode.CONFIG
    setup_logging(settings.log_level, settings.secrets, settings.log_format)
    # SIGTERM/SIGINT stop cleanly (exit 0); unfinished jobs stay in the store and resume on the
    # next start.
    return run(settings, build_application)


def _mask_secret_variables(text: str) -> str:
    sources: list[Mapping[str, str]] = [os.environ]
    with contextlib.suppress(ConfigError, OSError, UnicodeDecodeError):
        sources.append(read_dotenv(Path(".env")))
    secrets = [source.get(name, "").strip() for source in sources for name in SECRET_VARIABLES]
    return SecretMaskingFilter(secrets).mask(text)


if __name__ == "__main__":
    sys.exit(main())
