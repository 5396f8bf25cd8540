"""Typed records the store hands out, and the Protocol every backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

# How long an update id is remembered as the same update. Telegram keeps an update it could not
# deliver for 24 hours, so a redelivery comes within that; twice that for margin. After a week
# without updates Telegram may choose ids at random, so an older id is another update.
UPDATE_MEMORY = timedelta(hours=48)


def next_month_start(month: str) -> str:
    """The first day of the month after ``YYYY-MM``, as ``YYYY-MM-01``."""
    year, mon = (int(part) for part in month.split("-"))
    year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return f"{year:04d}-{mon:02d}-01"


class JobState(StrEnum):
    QUEUED = "queued"
    SUBMITTED = "submitted"
    SUCCEEDED = "succeeded"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_final(self) -> bool:
        return self in (JobState.DELIVERED, JobState.FAILED, JobState.CANCELED)


# Which state may follow which; anything else raises IllegalTransitionError.
ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.SUBMITTED, JobState.SUCCEEDED, JobState.FAILED,
                                JobState.CANCELED}),
    JobState.SUBMITTED: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED}),
    JobState.SUCCEEDED: frozenset({JobState.DELIVERED, JobState.FAILED}),
    JobState.DELIVERED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELED: frozenset(),
}


def placeholder_name(user_id: int) -> str:
    """The display name of a user an admin named by id before they ever wrote."""
    return f"user {user_id}"


@dataclass(frozen=True)
class User:
    user_id: int
    username: str | None
    display_name: str
    language: str | None  # "zh" / "en" chosen with /lang; None = follow Telegram's language_code
    telegram_language: str | None  # language_code as last seen
    banned: bool
    monthly_limit: int | None  # personal limit; None = the default MONTHLY_QUOTA
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class QuotaStatus:
    user_id: int
    month: str  # "YYYY-MM" in QUOTA_TIMEZONE
    limit: int  # personal limit or the default
    granted: int  # extra images granted by admins for this month
    used: int
    reserved: int
    # Images bought with Telegram Stars and not yet taken by a job: they never expire, and a
    # job takes them only once the month's quota is spent.
    purchased: int = 0

    @property
    def monthly_remaining(self) -> int:
        return max(0, self.limit + self.granted - self.used - self.reserved)

    @property
    def remaining(self) -> int:
        """What the user may still request: the month's quota left plus purchased images."""
        return self.monthly_remaining + self.purchased


@dataclass(frozen=True)
class NewJob:
    """What the pipeline knows about a request when it creates the job."""

    user_id: int
    chat_id: int
    request_message_id: int
    command: str  # e.g. "edit", "erase"
    model: str  # bot.bailian.models.Model value
    function: str | None  # bot.bailian.models.Function value; None for qwen
    spec_json: str  # the parsed request, encoded by the pipeline; opaque to the store
    input_file_id: str
    images_requested: int
    mask_file_id: str | None = None
    # A mask the bot made (painted over the photo or drawn in the Mini App): PNG bytes.
    mask_png: bytes | None = None
    unlimited: bool = False  # admins: reserve nothing against a limit, but still record usage
    # The Telegram update that asked for it: one update makes at most one job, however often
    # Telegram sends it. None: no update behind it (e.g. tests, tools).
    update_id: int | None = None


@dataclass(frozen=True)
class Job:
    id: int
    user_id: int
    chat_id: int
    request_message_id: int
    status_message_id: int | None
    command: str
    model: str
    function: str | None
    spec_json: str
    input_file_id: str
    mask_file_id: str | None
    task_id: str | None
    state: JobState
    quota_month: str  # the month the reservation was made in; settle/refund use it
    images_requested: int
    images_delivered: int
    reservation_open: bool  # True until settle or refund closed it (idempotency guard)
    result_urls: tuple[str, ...]
    result_file_ids: tuple[str, ...]  # Telegram file ids of the delivered images, in order
    error_code: str | None
    error_message: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime
    update_id: int | None = None  # the Telegram update that asked for it
    # The first job's id for each job of an album (create_album_jobs); None: a job on its own.
    album_id: int | None = None
    mask_png: bytes | None = None  # NewJob.mask_png


@dataclass(frozen=True)
class JobCreation:
    """What :meth:`Store.create_or_replay_job` did."""

    job: Job
    # True: the update already had this job (Telegram sent it again); nothing was reserved.
    replayed: bool


class ConversationKind(StrEnum):
    """Something a person is in the middle of, that the bot waits on."""

    MASK_WAIT = "mask_wait"  # /erase asked for a mask; keyed by the person
    PICK = "pick"  # an inline keyboard of choices; keyed by the keyboard's message
    PENDING_COMMAND = "pending_command"  # a command sent without a photo; keyed by the person


@dataclass(frozen=True)
class Conversation:
    """One pending conversation; unique by ``(kind, chat_id, key)``."""

    kind: ConversationKind
    chat_id: int
    # What the conversation hangs on: the owner's user id for per-person waits, the keyboard's
    # message id for picks.
    key: int
    user_id: int  # the owner: only they may continue it
    payload: str  # JSON encoded by bot.conversations; opaque to the store
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    admin_id: int
    target_user_id: int
    action: str  # "set_limit", "grant", "ban", "unban"
    value: str | None
    created_at: datetime
    update_id: int | None = None  # the admin's command; a second action for it is a replay


@dataclass(frozen=True)
class UsageLine:
    model: str
    function: str | None
    images: int
    cost_yuan: float


@dataclass(frozen=True)
class TopUser:
    user_id: int
    username: str | None
    display_name: str
    images: int


@dataclass(frozen=True)
class UsageReport:
    month: str
    lines: tuple[UsageLine, ...]
    total_images: int
    total_cost_yuan: float
    # model -> (images used this month, the account's free allowance for that model)
    free_allowance: dict[str, tuple[int, int]] = field(default_factory=dict)
    top_users: tuple[TopUser, ...] = ()


class StarPaymentState(StrEnum):
    PAID = "paid"
    REFUNDED = "refunded"


@dataclass(frozen=True)
class NewStarPayment:
    """A successful payment in Telegram Stars, as the successful_payment update told it."""

    user_id: int
    pack_images: int
    stars: int
    telegram_payment_charge_id: str
    provider_payment_charge_id: str | None
    payload: str


@dataclass(frozen=True)
class StarPayment:
    """One row of the Stars ledger."""

    id: int
    user_id: int
    pack_images: int
    stars: int
    telegram_payment_charge_id: str
    provider_payment_charge_id: str | None
    payload: str
    state: StarPaymentState
    month: str  # "YYYY-MM" in QUOTA_TIMEZONE when paid
    created_at: datetime
    refunded_at: datetime | None
    images_removed: int | None  # on refund: the pack's images still unused, taken back


@dataclass(frozen=True)
class StarCredit:
    """What :meth:`Store.record_star_payment` did."""

    payment: StarPayment
    credited: bool  # False: the charge was recorded before (the update came again)
    purchased: int  # the user's purchased images now


@dataclass(frozen=True)
class StarRefund:
    """What :meth:`Store.refund_star_payment` did."""

    payment: StarPayment
    refunded: bool  # False: it was refunded before; nothing changed
    images_removed: int
    purchased: int  # the user's purchased images now


@dataclass(frozen=True)
class StarRevenue:
    """Stars taken and given back, for /usage."""

    month: str
    paid_month: int  # stars of the payments made in ``month``
    payments_month: int
    refunded_month: int  # stars given back in ``month``
    refunds_month: int
    paid_total: int
    payments_total: int
    refunded_total: int
    refunds_total: int


@dataclass(frozen=True)
class AlbumPart:
    """One message of an album: its update, its message, its image and its caption."""

    update_id: int
    message_id: int
    file_id: str
    caption: str  # "" when it has none


class Store(Protocol):
    """What handlers and the job pipeline need from the bot's memory (any backend)."""

    async def close(self) -> None: ...

    def current_month(self, now: datetime | None = None) -> str:
        """``YYYY-MM`` of ``now`` (default: the current time) in QUOTA_TIMEZONE."""
        ...

    # users
    async def touch_user(
        self, user_id: int, username: str | None, display_name: str,
        telegram_language: str | None,
    ) -> User:
        """Create or refresh a user as last seen; returns the stored record."""
        ...

    async def ensure_user(self, user_id: int) -> User:
        """The stored user, created with a placeholder name if absent; a known user is kept."""
        ...

    async def get_user(self, user_id: int) -> User | None: ...

    async def find_user_by_username(self, username: str) -> User | None:
        """Look up by ``@username`` or ``username`` (case-insensitive)."""
        ...

    async def set_language(self, user_id: int, language: str | None) -> None: ...

    # quotas and admin
    async def quota_status(self, user_id: int, month: str | None = None) -> QuotaStatus: ...

    # Admin writes: with an ``update_id`` already in the audit log (within UPDATE_MEMORY) they
    # change nothing: Telegram sent the command again.
    async def set_monthly_limit(
        self, admin_id: int, user_id: int, limit: int | None, *, update_id: int | None = None
    ) -> None: ...

    async def grant_extra(
        self, admin_id: int, user_id: int, images: int, *, update_id: int | None = None
    ) -> QuotaStatus:
        """Grant extra images for the current month (may be negative to take back)."""
        ...

    async def set_banned(
        self, admin_id: int, user_id: int, banned: bool, *, update_id: int | None = None
    ) -> None: ...

    async def audit_log(self, limit: int = 50) -> list[AuditEntry]: ...

    async def usage_report(self, month: str | None = None, top: int = 10) -> UsageReport: ...

    # jobs
    async def create_job(self, job: NewJob, *, budget_yuan: Decimal | None = None) -> Job:
        """Reserve ``images_requested`` in the current month and insert the job, atomically.

        Raises QuotaExceededError (with the images remaining) and inserts nothing when the
        reservation does not fit: used + reserved + n <= limit + granted. With ``budget_yuan``,
        raises BudgetExceededError, in the same transaction, when the month's estimated spend
        plus the job's would pass it (admins' jobs too). A job whose ``update_id`` already has
        one is a replay: that job is returned, nothing reserved.
        """
        ...

    async def create_or_replay_job(
        self, job: NewJob, *, budget_yuan: Decimal | None = None
    ) -> JobCreation:
        """:meth:`create_job`, telling whether the job was created or replayed."""
        ...

    async def create_album_jobs(
        self, jobs: Sequence[NewJob], *, budget_yuan: Decimal | None = None
    ) -> tuple[JobCreation, ...]:
        """:meth:`create_job` for every image of an album at once, in one transaction: all are
        reserved and inserted, sharing an ``album_id``, or none (QuotaExceededError and
        BudgetExceededError count the whole album). If any of their update ids already has a
        job, the album was created before: its jobs are returned, replayed, nothing reserved.
        """
        ...

    async def album_jobs(self, album_id: int) -> list[Job]:
        """The jobs of an album, in the album's order."""
        ...

    async def estimated_spend(self, month: str | None = None) -> Decimal:
        """Yuan at list price for the images of ``month`` (default: now) delivered or reserved;
        the free allowance is not subtracted."""
        ...

    async def stuck_jobs(self, idle: timedelta) -> list[Job]:
        """Unfinished jobs whose state has not changed for longer than ``idle``, oldest first."""
        ...

    async def get_job(self, job_id: int) -> Job: ...

    async def set_status_message(self, job_id: int, message_id: int) -> None: ...

    async def mark_submitted(self, job_id: int, task_id: str) -> Job: ...

    async def mark_succeeded(self, job_id: int, result_urls: tuple[str, ...]) -> Job: ...

    async def mark_delivered(
        self, job_id: int, images_delivered: int, file_ids: tuple[str, ...] = ()
    ) -> Job:
        """Settle the reservation for the images delivered, keep their Telegram file ids and
        finish the job, in one step."""
        ...

    async def mark_failed(self, job_id: int, code: str, message: str) -> Job:
        """Refund the reservation and finish the job, in one step."""
        ...

    async def mark_canceled(self, job_id: int) -> Job:
        """Refund the reservation and finish the job, in one step."""
        ...

    async def note_attempt(self, job_id: int) -> Job:
        """Count one more attempt at the job (a restart picking it up again)."""
        ...

    async def settle(self, job_id: int, delivered: int) -> bool:
        """Turn the reservation into usage for ``delivered``; release the rest.

        Idempotent: returns False and changes nothing if the reservation is already closed.
        """
        ...

    async def refund(self, job_id: int) -> bool:
        """Release the whole reservation; idempotent like :meth:`settle`."""
        ...

    async def claim_job(self, job_id: int, owner: str, lease: timedelta) -> Job | None:
        """Claim an unfinished job for ``owner`` until ``lease`` from now unless another
        owner's claim holds; the job, or None."""
        ...

    async def renew_claims(self, owner: str, lease: timedelta) -> int:
        """Extend every claim ``owner`` holds on an unfinished job; returns how many."""
        ...

    async def release_claims(self, owner: str | None = None) -> int:
        """Drop ``owner``'s claims (everyone's with None); returns how many."""
        ...

    async def cancel_unclaimed(self, job_id: int) -> Job | None:
        """Cancel a queued job nobody holds a live claim on; the job, or None."""
        ...

    async def resumable_jobs(self) -> list[Job]:
        """Every job not in a final state, oldest first."""
        ...

    async def queued_jobs_fair(self) -> list[Job]:
        """Queued jobs in fair order: round robin across users, oldest first within a user."""
        ...

    async def queue_position(self, job_id: int) -> int | None:
        """1-based position in :meth:`queued_jobs_fair`, or None if the job is not queued."""
        ...

    async def active_jobs(self) -> list[Job]:
        """Jobs submitted or succeeded but not yet final (for /queue)."""
        ...

    async def job_counts(self) -> dict[JobState, int]:
        """How many jobs are in each state (states without jobs are left out); for /metrics."""
        ...

    async def prune_old_jobs(self, before: datetime) -> int:
        """Clear the heavy fields (a drawn mask's bytes, the result URLs) of jobs that ended
        before ``before``; returns how many jobs lost them. Counts, money and ids are kept."""
        ...

    # conversations (what a person is in the middle of)
    async def put_conversation(
        self, kind: ConversationKind, chat_id: int, key: int, *, user_id: int, payload: str,
        ttl_seconds: float,
    ) -> Conversation:
        """Start the conversation ``(kind, chat_id, key)``, replacing one that was there."""
        ...

    async def get_conversation(
        self, kind: ConversationKind, chat_id: int, key: int
    ) -> Conversation | None:
        """The conversation if it exists and has not expired."""
        ...

    async def end_conversation(
        self, kind: ConversationKind, chat_id: int, key: int
    ) -> Conversation | None:
        """Delete the conversation and return it (None if absent or expired).

        Of concurrent callers exactly one gets it: a keyboard pressed twice is used once.
        """
        ...

    async def prune_conversations(self) -> int:
        """Delete every expired conversation; returns how many."""
        ...

    # updates Telegram delivered (so that one sent again is not handled again)
    async def update_handled(self, update_id: int) -> bool:
        """Whether the update was recorded as handled within UPDATE_MEMORY."""
        ...

    async def record_update_handled(self, update_id: int) -> None:
        """Record that every route ran for the update (again: no change)."""
        ...

    async def forget_old_updates(self) -> int:
        """Forget update ids older than UPDATE_MEMORY; returns how many handled records
        were deleted."""
        ...

    # images bought with Telegram Stars
    async def record_star_payment(self, payment: NewStarPayment) -> StarCredit:
        """Record the payment in the ledger and credit its pack, in one transaction; a charge
        id recorded before credits nothing."""
        ...

    async def star_payment(self, telegram_payment_charge_id: str) -> StarPayment | None: ...

    async def refund_star_payment(
        self, admin_id: int, telegram_payment_charge_id: str
    ) -> StarRefund:
        """Mark the payment refunded and take back the pack's images still unused (never more
        than the balance); audited. Raises StarPaymentNotFoundError for an unknown charge."""
        ...

    async def star_revenue(self, month: str | None = None) -> StarRevenue: ...

    # admin settings (small key/value facts the bot keeps, e.g. when an alert was last sent)
    async def get_setting(self, key: str) -> str | None: ...

    async def set_setting(self, key: str, value: str) -> None: ...

    # result-button presses (bot/jobs/presses.py): one job per burst, across instances
    async def begin_press(self, key: str, *, patience: timedelta) -> bool:
        """Record a press of the button ``key`` and return True, unless an earlier press of it
        still holds it: its job is not final, or it made none yet and began within
        ``patience`` (after that its process is taken for dead). One write transaction: of
        concurrent callers on any instance at most one gets True."""
        ...

    async def press_made(self, key: str, job_id: int | None) -> None:
        """The job the press made; None: it made none, and the button is free again."""
        ...

    async def prune_presses(self, before: datetime) -> int:
        """Forget presses made before ``before``, whatever their job; returns how many."""
        ...

    # albums being gathered (bot/albums.py), whichever instance each part reaches
    async def add_album_part(self, chat_id: int, media_group_id: str, part: AlbumPart) -> None:
        """Keep the part until its album is taken; a part already kept (its update sent
        again) is left as it is."""
        ...

    async def album_quiet_for(self, chat_id: int, media_group_id: str) -> float:
        """Seconds since the album's newest part arrived, by the store's clock (infinite when
        it has none)."""
        ...

    async def take_album(
        self, chat_id: int, media_group_id: str, update_id: int
    ) -> tuple[AlbumPart, ...] | None:
        """Mark the album's untaken parts taken and return them in update order, if the part
        ``update_id`` is the smallest of them; None otherwise (another call takes them, or
        took them). One write transaction: exactly one caller takes each part."""
        ...

    async def prune_album_parts(self, before: datetime) -> int:
        """Delete album parts that arrived before ``before``; returns how many."""
        ...
