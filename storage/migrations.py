"""SQLite files of earlier releases: ordered migrations tracked with ``PRAGMA user_version``.

Frozen at v8: they only bring a file from an earlier release up to v8, after which Alembic owns
it (storage/migrate.py stamps it with the baseline revision). New schema changes are Alembic
revisions in storage/alembic/versions, for both backends; nothing is appended here any more.

Each migration runs in its own ``BEGIN IMMEDIATE`` transaction together with the version bump,
so a crash leaves the database at a whole version, and two processes opening the same file at
once cannot both apply the same step (the second re-reads the version under the write lock).
Never edit one that has shipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiosqlite

from bot.errors import UnsupportedDatabaseError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


V1_STATEMENTS: tuple[str, ...] = (
    """
    CREATE TABLE users (
        user_id INTEGER PRIMARY KEY,
        username TEXT,
        display_name TEXT NOT NULL,
        telegram_language TEXT,
        language TEXT,
        banned INTEGER NOT NULL DEFAULT 0 CHECK (banned IN (0, 1)),
        monthly_limit INTEGER CHECK (monthly_limit IS NULL OR monthly_limit >= 0),
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX users_username ON users (username COLLATE NOCASE)",
    """
    CREATE TABLE usage (
        user_id INTEGER NOT NULL REFERENCES users (user_id),
        month TEXT NOT NULL,
        used INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0),
        reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
        granted INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (user_id, month)
    ) WITHOUT ROWID
    """,
    # AUTOINCREMENT: job ids are shown to users and must never be reused.
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL REFERENCES users (user_id),
        chat_id INTEGER NOT NULL,
        request_message_id INTEGER NOT NULL,
        status_message_id INTEGER,
        command TEXT NOT NULL,
        model TEXT NOT NULL,
        function TEXT,
        spec_json TEXT NOT NULL,
        input_file_id TEXT NOT NULL,
        mask_file_id TEXT,
        task_id TEXT,
        state TEXT NOT NULL CHECK (state IN
            ('queued', 'submitted', 'succeeded', 'delivered', 'failed', 'canceled')),
        quota_month TEXT NOT NULL,
        images_requested INTEGER NOT NULL CHECK (images_requested > 0),
        images_delivered INTEGER NOT NULL DEFAULT 0
            CHECK (images_delivered BETWEEN 0 AND images_requested),
        reservation_open INTEGER NOT NULL CHECK (reservation_open IN (0, 1)),
        result_urls TEXT NOT NULL DEFAULT '[]',
        error_code TEXT,
        error_message TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    "CREATE INDEX jobs_state ON jobs (state)",
    "CREATE INDEX jobs_user_month ON jobs (user_id, quota_month)",
    """
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        admin_id INTEGER NOT NULL,
        target_user_id INTEGER NOT NULL,
        action TEXT NOT NULL,
        value TEXT,
        created_at TEXT NOT NULL
    )
    """,
)

V2_STATEMENTS: tuple[str, ...] = (
    """
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID
    """,
    # The monthly report scans one month of jobs; without this it reads the whole table.
    "CREATE INDEX jobs_quota_month ON jobs (quota_month, reservation_open)",
)

V3_STATEMENTS: tuple[str, ...] = (
    # JSON list of Telegram file ids, like result_urls.
    "ALTER TABLE jobs ADD COLUMN result_file_ids TEXT NOT NULL DEFAULT '[]'",
    # Adding a storage.models.ConversationKind needs a migration that widens this CHECK.
    """
    CREATE TABLE conversations (
        kind TEXT NOT NULL CHECK (kind IN ('mask_wait', 'pick')),
        chat_id INTEGER NOT NULL,
        key INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        PRIMARY KEY (kind, chat_id, key)
    ) WITHOUT ROWID
    """,
    # Pruning deletes by expiry.
    "CREATE INDEX conversations_expires_at ON conversations (expires_at)",
    # Earlier releases kept a delivered job's file ids in settings as results:<job id> = a JSON
    # list; move them onto the job. A value that is not a JSON array of strings (none was ever
    # written) is left behind, and deleted below, rather than breaking the job's record.
    """
    UPDATE jobs SET result_file_ids = (
        SELECT value FROM settings WHERE settings.key = 'results:' || jobs.id
    )
    WHERE EXISTS (
        SELECT 1 FROM settings
        WHERE settings.key = 'results:' || jobs.id
            AND json_valid(settings.value) AND json_type(settings.value) = 'array'
            AND NOT EXISTS (
                SELECT 1 FROM json_each(settings.value) WHERE json_each.type != 'text'
            )
    )
    """,
    # maskwait:<chat>:<user> and pick:<chat>:<message> were conversation state, kept as JSON in
    # settings. They live 10 minutes and 24 hours, so they are dropped, not carried over: at
    # worst someone sends /erase again or presses a fresh keyboard.
    """
    DELETE FROM settings
    WHERE substr(key, 1, 8) = 'results:'
        OR substr(key, 1, 9) = 'maskwait:'
        OR substr(key, 1, 5) = 'pick:'
    """,
)

V4_STATEMENTS: tuple[str, ...] = (
    # The Telegram update behind a job or an admin action: Telegram sends an update again when
    # its offset was not confirmed (a crash, a retried webhook), and the second copy must find
    # the first's effect in the same transaction. ALTER TABLE cannot add a UNIQUE column; a
    # partial unique index does the same for the rows that have an update id.
    "ALTER TABLE jobs ADD COLUMN update_id INTEGER",
    "CREATE UNIQUE INDEX jobs_update_id ON jobs (update_id) WHERE update_id IS NOT NULL",
    "ALTER TABLE audit ADD COLUMN update_id INTEGER",
    "CREATE UNIQUE INDEX audit_update_id ON audit (update_id) WHERE update_id IS NOT NULL",
    # Updates every route has run for: one sent again is dropped before any handler answers.
    """
    CREATE TABLE handled_updates (
        update_id INTEGER PRIMARY KEY,
        handled_at TEXT NOT NULL
    )
    """,
    # Pruning deletes by age.
    "CREATE INDEX handled_updates_handled_at ON handled_updates (handled_at)",
)

V5_STATEMENTS: tuple[str, ...] = (
    # A new conversation kind: SQLite cannot change a CHECK, so the table is rebuilt.
    """
    CREATE TABLE conversations_v5 (
        kind TEXT NOT NULL CHECK (kind IN ('mask_wait', 'pick', 'pending_command')),
        chat_id INTEGER NOT NULL,
        key INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        PRIMARY KEY (kind, chat_id, key)
    ) WITHOUT ROWID
    """,
    "INSERT INTO conversations_v5 SELECT kind, chat_id, key, user_id, payload, created_at,"
    " expires_at FROM conversations",
    "DROP TABLE conversations",
    "ALTER TABLE conversations_v5 RENAME TO conversations",
    "CREATE INDEX conversations_expires_at ON conversations (expires_at)",
)

V6_STATEMENTS: tuple[str, ...] = (
    # The jobs of one album (a media group run with one command) share the first job's id, so
    # their results go back together.
    "ALTER TABLE jobs ADD COLUMN album_id INTEGER",
    "CREATE INDEX jobs_album_id ON jobs (album_id) WHERE album_id IS NOT NULL",
)

V7_STATEMENTS: tuple[str, ...] = (
    # A mask made by the bot (painted over the photo, drawn in the Mini App) has no Telegram file
    # to fetch again, so the job keeps its bytes until it has run.
    "ALTER TABLE jobs ADD COLUMN mask_png BLOB",
)

V8_STATEMENTS: tuple[str, ...] = (
    # Images bought with Telegram Stars: a balance that outlives the month. A job takes from
    # the monthly quota first, then from it, and remembers how many it took, so that a refund
    # or a partial delivery gives them back to where they came from.
    "ALTER TABLE users ADD COLUMN purchased_images INTEGER NOT NULL DEFAULT 0"
    " CHECK (purchased_images >= 0)",
    "ALTER TABLE jobs ADD COLUMN reserved_purchased INTEGER NOT NULL DEFAULT 0"
    " CHECK (reserved_purchased >= 0)",
    # The ledger: one row per Telegram payment, unique by its charge id, so a payment delivered
    # again (a redelivered update, a second instance) finds its row and credits nothing.
    # month and refunded_month are in QUOTA_TIMEZONE, for /usage.
    """
    CREATE TABLE star_payments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL REFERENCES users (user_id),
        pack_images INTEGER NOT NULL CHECK (pack_images > 0),
        stars INTEGER NOT NULL CHECK (stars > 0),
        telegram_payment_charge_id TEXT NOT NULL UNIQUE,
        provider_payment_charge_id TEXT,
        payload TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('paid', 'refunded')),
        month TEXT NOT NULL,
        created_at TEXT NOT NULL,
        refunded_at TEXT,
        refunded_month TEXT,
        images_removed INTEGER CHECK (images_removed IS NULL OR images_removed >= 0)
    )
    """,
    "CREATE INDEX star_payments_user ON star_payments (user_id, id)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "users, monthly usage, jobs, audit log", V1_STATEMENTS),
    Migration(2, "settings table, index for the monthly report", V2_STATEMENTS),
    Migration(3, "conversations table; delivered file ids on jobs", V3_STATEMENTS),
    Migration(4, "update ids on jobs and audit; handled updates", V4_STATEMENTS),
    Migration(5, "conversations may be pending commands", V5_STATEMENTS),
    Migration(6, "album ids on jobs", V6_STATEMENTS),
    Migration(7, "masks made by the bot kept on their jobs", V7_STATEMENTS),
    Migration(8, "images bought with Telegram Stars: balance, ledger", V8_STATEMENTS),
)
LATEST_VERSION = MIGRATIONS[-1].version


async def schema_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row is not None else 0


def _refuse_newer(version: int, where: str) -> None:
    if version > LATEST_VERSION:
        raise UnsupportedDatabaseError(
            f"database {where} has schema version {version}, but this code only knows versions "
            f"up to {LATEST_VERSION}; run a newer release of the bot or point DATABASE_URL at "
            "another file"
        )


async def migrate(db: aiosqlite.Connection, where: str) -> int:
    """Bring the schema of ``db`` (autocommit mode) to :data:`LATEST_VERSION`; return it."""
    _refuse_newer(await schema_version(db), where)
    for migration in MIGRATIONS:
        await db.execute("BEGIN IMMEDIATE")
        try:
            current = await schema_version(db)  # again, under the write lock
            _refuse_newer(current, where)
            if current >= migration.version:
                await db.execute("ROLLBACK")
                continue
            for statement in migration.statements:
                await db.execute(statement)
            # PRAGMA takes no parameters; the value is our own integer constant.
            await db.execute(f"PRAGMA user_version = {int(migration.version)}")
            await db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                await db.execute("ROLLBACK")
            raise
        log.info("database %s migrated to schema version %d (%s)", where,
                 migration.version, migration.description)
    return await schema_version(db)
