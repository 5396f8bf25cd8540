"""The schema, once for SQLite and PostgreSQL: SQLAlchemy Core tables.

This is the schema the code expects (Alembic's head). Changing it needs a new revision in
storage/alembic/versions; tests/test_storage_schema.py fails while the two disagree.

Shared choices, so that one statement reads the same on both backends:
- Telegram ids (users, chats, messages, updates) exceed 32 bits: BIGINT. Row ids are BIGINT
  identities on PostgreSQL and ``INTEGER PRIMARY KEY AUTOINCREMENT`` on SQLite (only that spelling
  is SQLite's rowid, and AUTOINCREMENT keeps job ids, shown to users, from ever being reused).
- Flags are INTEGER 0/1 with a CHECK, as the SQLite files of earlier releases have them.
- Times are fixed-width UTC ISO text (``2026-11-15T12:00:00.000000+00:00``), so text order is
  time order on both and the store's injected clock is the only clock (no server ``now()``).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)

# A row id: BIGINT identity on PostgreSQL, the rowid alias on SQLite.
RowId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("username", Text),
    Column("display_name", Text, nullable=False),
    Column("telegram_language", Text),
    Column("language", Text),
    Column("banned", Integer, nullable=False, server_default=text("0")),
    Column("monthly_limit", Integer),
    Column("created_at", Text, nullable=False),
    Column("last_seen_at", Text, nullable=False),
    Column("purchased_images", Integer, nullable=False, server_default=text("0")),
    CheckConstraint("banned IN (0, 1)", name="users_banned"),
    CheckConstraint("monthly_limit IS NULL OR monthly_limit >= 0", name="users_monthly_limit"),
    CheckConstraint("purchased_images >= 0", name="users_purchased_images"),
)
# Usernames are looked up without regard to case.
Index("users_username", func.lower(users.c.username))

usage = Table(
    "usage", metadata,
    Column("user_id", BigInteger, ForeignKey("users.user_id"), nullable=False),
    Column("month", Text, nullable=False),
    Column("used", Integer, nullable=False, server_default=text("0")),
    Column("reserved", Integer, nullable=False, server_default=text("0")),
    Column("granted", Integer, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("user_id", "month"),
    CheckConstraint("used >= 0", name="usage_used"),
    CheckConstraint("reserved >= 0", name="usage_reserved"),
)

jobs = Table(
    "jobs", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("users.user_id"), nullable=False),
    Column("chat_id", BigInteger, nullable=False),
    Column("request_message_id", BigInteger, nullable=False),
    Column("status_message_id", BigInteger),
    Column("command", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("function", Text),
    Column("spec_json", Text, nullable=False),
    Column("input_file_id", Text, nullable=False),
    Column("mask_file_id", Text),
    Column("task_id", Text),
    Column("state", Text, nullable=False),
    Column("quota_month", Text, nullable=False),
    Column("images_requested", Integer, nullable=False),
    Column("images_delivered", Integer, nullable=False, server_default=text("0")),
    Column("reservation_open", Integer, nullable=False),
    Column("result_urls", Text, nullable=False, server_default=text("'[]'")),
    Column("error_code", Text),
    Column("error_message", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("result_file_ids", Text, nullable=False, server_default=text("'[]'")),
    # The Telegram update that made the job: one update makes at most one job.
    Column("update_id", BigInteger),
    # The jobs of one album share the first job's id.
    Column("album_id", BigInteger),
    # A mask the bot made has no Telegram file: its bytes stay until the job has run.
    Column("mask_png", LargeBinary),
    # Images taken from the purchased balance (the rest came from the monthly quota).
    Column("reserved_purchased", Integer, nullable=False, server_default=text("0")),
    # The instance working the job and until when its claim holds (revision 0002).
    Column("claimed_by", Text),
    Column("lease_until", Text),
    CheckConstraint(
        "state IN ('queued', 'submitted', 'succeeded', 'delivered', 'failed', 'canceled')",
        name="jobs_state_known",
    ),
    CheckConstraint("images_requested > 0", name="jobs_images_requested"),
    CheckConstraint("images_delivered BETWEEN 0 AND images_requested",
                    name="jobs_images_delivered"),
    CheckConstraint("reservation_open IN (0, 1)", name="jobs_reservation_open"),
    CheckConstraint("reserved_purchased >= 0", name="jobs_reserved_purchased"),
    sqlite_autoincrement=True,
)
Index("jobs_state", jobs.c.state)
Index("jobs_user_month", jobs.c.user_id, jobs.c.quota_month)
# The monthly report scans one month of jobs.
Index("jobs_quota_month", jobs.c.quota_month, jobs.c.reservation_open)
Index("jobs_update_id", jobs.c.update_id, unique=True,
      sqlite_where=jobs.c.update_id.isnot(None), postgresql_where=jobs.c.update_id.isnot(None))
Index("jobs_album_id", jobs.c.album_id,
      sqlite_where=jobs.c.album_id.isnot(None), postgresql_where=jobs.c.album_id.isnot(None))

audit = Table(
    "audit", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("admin_id", BigInteger, nullable=False),
    Column("target_user_id", BigInteger, nullable=False),
    Column("action", Text, nullable=False),
    Column("value", Text),
    Column("created_at", Text, nullable=False),
    Column("update_id", BigInteger),
    sqlite_autoincrement=True,
)
Index("audit_update_id", audit.c.update_id, unique=True,
      sqlite_where=audit.c.update_id.isnot(None), postgresql_where=audit.c.update_id.isnot(None))

settings = Table(
    "settings", metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
)

conversations = Table(
    "conversations", metadata,
    Column("kind", Text, nullable=False),
    Column("chat_id", BigInteger, nullable=False),
    Column("key", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
    PrimaryKeyConstraint("kind", "chat_id", "key"),
    # Adding a storage.models.ConversationKind needs a revision that widens this CHECK.
    CheckConstraint("kind IN ('mask_wait', 'pick', 'pending_command')",
                    name="conversations_kind"),
)
Index("conversations_expires_at", conversations.c.expires_at)

handled_updates = Table(
    "handled_updates", metadata,
    Column("update_id", BigInteger, primary_key=True, autoincrement=False),
    Column("handled_at", Text, nullable=False),
)
Index("handled_updates_handled_at", handled_updates.c.handled_at)

star_payments = Table(
    "star_payments", metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, ForeignKey("users.user_id"), nullable=False),
    Column("pack_images", Integer, nullable=False),
    Column("stars", Integer, nullable=False),
    Column("telegram_payment_charge_id", Text, nullable=False, unique=True),
    Column("provider_payment_charge_id", Text),
    Column("payload", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("month", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("refunded_at", Text),
    Column("refunded_month", Text),
    Column("images_removed", Integer),
    CheckConstraint("pack_images > 0", name="star_payments_pack_images"),
    CheckConstraint("stars > 0", name="star_payments_stars"),
    CheckConstraint("state IN ('paid', 'refunded')", name="star_payments_state"),
    CheckConstraint("images_removed IS NULL OR images_removed >= 0",
                    name="star_payments_images_removed"),
    sqlite_autoincrement=True,
)
Index("star_payments_user", star_payments.c.user_id, star_payments.c.id)

# A result button's press and the job it made (bot/jobs/presses.py).
presses = Table(
    "presses", metadata,
    Column("press_key", Text, primary_key=True),
    Column("job_id", BigInteger),
    Column("made_at", Text, nullable=False),
)
Index("presses_made_at", presses.c.made_at)

# An album's parts as they arrive, on whichever instance (bot/albums.py).
album_parts = Table(
    "album_parts", metadata,
    Column("chat_id", BigInteger, nullable=False),
    Column("media_group_id", Text, nullable=False),
    Column("update_id", BigInteger, nullable=False),
    Column("message_id", BigInteger, nullable=False),
    Column("file_id", Text, nullable=False),
    Column("caption", Text, nullable=False),
    Column("arrived_at", Text, nullable=False),
    Column("taken", Integer, nullable=False, server_default=text("0")),
    PrimaryKeyConstraint("chat_id", "media_group_id", "update_id"),
)
Index("album_parts_arrived_at", album_parts.c.arrived_at)

# Children before parents: the order to empty them in.
TABLES_CHILDREN_FIRST = tuple(reversed(metadata.sorted_tables))
