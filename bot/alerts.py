"""Alerts for the admins, in one place: what happened, in each admin's language, not too often.

Every kind is throttled with a marker in the settings table, so a restart does not repeat what
was said: ``alert:<kind>`` holds when it was last sent, and a kind is sent at most once per
ADMIN_ALERT_INTERVAL (account problems per error code, the bot starting, jobs stuck). The spend
cap's two thresholds are once per month instead: ``alert:budget80:<YYYY-MM>`` and
``alert:budget100:<YYYY-MM>``. With no admin configured nothing is sent or marked.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version

from bot.errors import AccountError, BotError, BudgetExceededError
from bot.ports import Messenger
from bot.texts import Lang, text
from storage.models import Job, Store, next_month_start

logger = logging.getLogger(__name__)

# Each kind of alert reaches the admins at most once per this many seconds.
ADMIN_ALERT_INTERVAL = 3600.0
# The spend cap's early warning, as a share of MONTHLY_BUDGET_YUAN.
BUDGET_WARNING_SHARE = Decimal("0.8")
# A stuck-jobs alert names at most this many of them.
MAX_JOBS_NAMED = 10
PACKAGE = "bailian-image-bot"


def package_version() -> str:
    """The installed package's version (pyproject.toml), or "unknown" outside an install."""
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "unknown"


def yuan(amount: Decimal) -> str:
    """An amount as shown to admins: two decimals, no currency sign (the texts add ¥)."""
    return f"{amount:.2f}"


def percent_of(spent: Decimal, budget: Decimal) -> int:
    """Whole percent of the budget spent (a zero budget counts as fully spent)."""
    return int(spent * 100 / budget) if budget > 0 else 100


class AdminAlerts:
    """Tells every admin, in their language, what needs them; each kind throttled."""

    def __init__(
        self, store: Store, messenger: Messenger, admin_ids: Iterable[int], *,
        interval: float = ADMIN_ALERT_INTERVAL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._messenger = messenger
        self._admin_ids = frozenset(admin_ids)
        self._interval = interval
        self._clock = clock
        # Several workers meet the same problem at once: one of them alerts.
        self._marking = asyncio.Lock()

    async def account_problem(self, exc: AccountError) -> None:
        """DashScope refused the account (key, arrears, allocation): every request fails."""
        await self._hourly(exc.code, lambda lang: text(
            "admin_alert", lang, code=html.escape(exc.code), message=html.escape(exc.message)
        ))

    async def started(self, resumed: int) -> None:
        """The bot (re)started: which version, and how many unfinished jobs it took up again."""
        shown = html.escape(package_version())
        await self._hourly("started", lambda lang: text(
            "alert_started", lang, version=shown, resumed=resumed
        ))

    async def stuck(self, jobs: Sequence[Job], idle_minutes: int) -> None:
        """Unfinished jobs whose state has not changed for ``idle_minutes``."""
        if not jobs:
            return
        named = ", ".join(f"#{job.id}" for job in jobs[:MAX_JOBS_NAMED])
        if len(jobs) > MAX_JOBS_NAMED:
            named += ", …"
        await self._hourly("stuck", lambda lang: text(
            "alert_stuck", lang, count=len(jobs), minutes=idle_minutes, jobs=named
        ))

    async def spend(self, month: str, spent: Decimal, budget: Decimal) -> None:
        """After a reservation: warn once a month at 80 % of the cap, and once at the cap."""
        if spent >= budget:
            await self._budget_reached(month, spent, budget)
        elif spent >= budget * BUDGET_WARNING_SHARE:
            await self._once(f"budget80:{month}", lambda lang: text(
                "alert_budget_warning", lang, month=month, spent=yuan(spent),
                budget=yuan(budget), percent=percent_of(spent, budget),
                reset=next_month_start(month),
            ))

    async def budget_refused(self, exc: BudgetExceededError) -> None:
        """A request was refused by the cap: the budget is reached (once a month)."""
        await self._budget_reached(exc.month, exc.spent, exc.budget)

    async def _budget_reached(self, month: str, spent: Decimal, budget: Decimal) -> None:
        # The warning is moot once the cap is reached: it is marked sent, never sent after.
        await self._mark(f"budget80:{month}")
        await self._once(f"budget100:{month}", lambda lang: text(
            "alert_budget_reached", lang, month=month, spent=yuan(spent), budget=yuan(budget),
            reset=next_month_start(month),
        ))

    async def _hourly(self, kind: str, render: Callable[[Lang], str]) -> None:
        """Send unless ``kind`` was sent within the interval."""
        if not self._admin_ids:
            return
        key = f"alert:{kind}"
        async with self._marking:
            last = await self._store.get_setting(key)
            now = self._clock()
            if last is not None and (now - datetime.fromisoformat(last)).total_seconds() < (
                self._interval
            ):
                return
            await self._store.set_setting(key, now.isoformat())
        await self._send(render)

    async def _once(self, kind: str, render: Callable[[Lang], str]) -> None:
        """Send unless ``kind`` was ever sent."""
        if await self._mark(kind):
            await self._send(render)

    async def _mark(self, kind: str) -> bool:
        """Mark ``kind`` as sent; False if it was already (or there is nobody to tell)."""
        if not self._admin_ids:
            return False
        key = f"alert:{kind}"
        async with self._marking:
            if await self._store.get_setting(key) is not None:
                return False
            await self._store.set_setting(key, self._clock().isoformat())
        return True

    async def _send(self, render: Callable[[Lang], str]) -> None:
        for admin_id in sorted(self._admin_ids):
            admin = await self._store.get_user(admin_id)
            lang = Lang(admin.language) if admin and admin.language else Lang.from_code(
                admin.telegram_language if admin else None)
            try:
                await self._messenger.send_text(admin_id, render(lang))
            except BotError as exc:  # e.g. an admin who never started the bot
                logger.info("an alert could not reach admin %s: %s", admin_id, exc)
