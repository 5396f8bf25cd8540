"""``python -m bot``: load the settings and run the bot with long polling until SIGTERM/SIGINT.

``python -m bot playground`` runs it against the offline world instead, with a chat page to try
it in the browser (bot/playground): no token, no key, no network.

The exit status names the cause of a stop (:class:`bot.startup.ExitCode`): 0 stopped by a signal,
2 configuration, 3 token rejected, 4 Telegram unreachable, 5 database, 1 anything else.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
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
# Without these the playground is what one can try.
CREDENTIALS = ("TELEGRAM_BOT_TOKEN", "DASHSCOPE_API_KEY")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "playground":
        # Imported here: the bot itself never loads the offline world.
        from bot.playground.app import PlaygroundOptions, run_playground
        from bot.texts import Lang

        return run_playground(PlaygroundOptions(
            host=args.host, port=args.port, database=args.db, lang=Lang(args.lang),
            log_level=args.log_level,
        ))
    if args.command == "backup":
        return backup_command(args.path)
    return _run_bot()


def _parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Run the bot (settings from the environment and .env).",
    )
    commands = parser.add_subparsers(dest="command")
    playground = commands.add_parser(
        "playground",
        help="try the bot in a browser, offline: no token, no key",
        description="Run the real bot against a local Bot API and the DashScope emulator, "
        "and serve a chat page to talk to it. Needs no token, no key, no network.",
    )
    playground.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    playground.add_argument("--port", type=int, default=8080, help="default: 8080")
    playground.add_argument(
        "--db", default=None, metavar="PATH",
        help="keep the bot's SQLite database in PATH (default: a throwaway file)",
    )
    playground.add_argument("--lang", choices=("en", "zh"), default="en")
    playground.add_argument(
        "--log-level", default="WARNING",
        choices=("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    )
    backup = commands.add_parser("backup", help="copy the SQLite database while the bot runs")
    backup.add_argument("path", type=Path, help="the file to write the copy to")
    return parser.parse_args(argv)


def _run_bot() -> int:
    try:
        settings = load_settings()
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        # Without a token or key there is still something to try: say what, on the same line.
        missing = isinstance(exc, ConfigError) and exc.variable in CREDENTIALS and (
            "is required" in exc.reason
        )
        hint = "; to try the bot without them: python -m bot playground" if missing else ""
        print(f"Configuration error: {_mask_secret_variables(str(exc))}{hint}", file=sys.stderr)
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
