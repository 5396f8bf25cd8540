"""The bot's memory: users, monthly quotas, jobs, admin audit log and settings, on SQLite or
PostgreSQL."""

from storage.factory import open_store
from storage.models import (
    ALLOWED_TRANSITIONS,
    AuditEntry,
    Conversation,
    ConversationKind,
    Job,
    JobState,
    NewJob,
    QuotaStatus,
    Store,
    TopUser,
    UsageLine,
    UsageReport,
    User,
)
from storage.sql import SqliteStore, SqlStore

__all__ = [
    "ALLOWED_TRANSITIONS",
    "AuditEntry",
    "Conversation",
    "ConversationKind",
    "Job",
    "JobState",
    "NewJob",
    "QuotaStatus",
    "SqlStore",
    "SqliteStore",
    "Store",
    "TopUser",
    "UsageLine",
    "UsageReport",
    "User",
    "open_store",
]
