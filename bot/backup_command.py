"""``python -m bot backup PATH``: the command around :func:`storage.backup.backup_database`.

It needs only DATABASE_URL (environment, then .env, then the default), not the bot's secrets:
an operator's backup job should not have to hold the bot token.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from bot.config import Settings, read_dotenv
from bot.errors import ConfigError, UnsupportedDatabaseError
from bot.startup import ExitCode
from storage.backup import BackupError, backup_database


def backup_command(destination: Path) -> int:
    try:
        env = read_dotenv(Path(".env"))
    except (ConfigError, OSError, UnicodeDecodeError) as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    env.update(os.environ)
    url = env.get("DATABASE_URL", "").strip() or Settings("", "").database_url
    try:
        result = backup_database(url, destination)
    except UnsupportedDatabaseError as exc:
        print(f"Cannot back up: {exc}", file=sys.stderr)
        return ExitCode.CONFIG
    except BackupError as exc:
        print(f"Backup failed: {exc}", file=sys.stderr)
        return ExitCode.DATABASE
    print(f"Backed up to {result.path} ({result.size} bytes, schema version "
          f"{result.schema_version}). Restore: stop the bot, copy this file over the database "
          "file (delete its -wal and -shm files), start the bot.")
    return ExitCode.OK
