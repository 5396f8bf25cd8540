"""Admin commands: /setquota, /grant, /ban, /unban, /usage, /queue, /refund. Others are
refused."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime

from telegram import Message, Update
from telegram.error import TelegramError

from bot.alerts import percent_of, yuan
from bot.services import BotContext
from bot.texts import Lang, text
from handlers.common import language_of, reply
from storage.models import StarPaymentState, User, placeholder_name

MONTH_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
MAX_ADMIN_IMAGES = 1_000_000
# Telegram user ids have at most 52 significant bits (and are positive; chats may be negative).
MAX_USER_ID = 2**52


async def _admin_lang(update: Update, context: BotContext) -> Lang | None:
    """The admin's language, or None after telling a non-admin no."""
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None:
        return None
    lang = await language_of(update, context)
    if not context.services.is_admin(user.id):
        await reply(message, context, text("admin_only", lang))
        return None
    return lang


async def _target(
    update: Update, context: BotContext, args: list[str], lang: Lang, *, values: int
) -> tuple[User, list[str]] | None:
    """Resolve ``<user>``: any numeric id, a known @username, or the replied-to message's sender.

    ``values`` is how many arguments follow the user; a reply with just that many names nobody.
    """
    message = update.effective_message
    assert message is not None
    store = context.services.store
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and len(args) == values:
        author = replied.from_user
        known = await store.get_user(author.id) or await store.touch_user(
            author.id, author.username, author.full_name, author.language_code
        )
        return known, args
    if len(args) <= values:
        await reply(message, context, text("admin_need_user", lang))
        return None
    token = args[0]
    if _is_int(token):
        if not 0 < int(token) < MAX_USER_ID:
            await reply(message, context,
                        text("admin_bad_user_id", lang, user=html.escape(token)))
            return None
        # Any id works, so a ban or a quota can be prepared before the person ever writes.
        return await store.ensure_user(int(token)), args[1:]
    user = await store.find_user_by_username(token)
    if user is None:
        await reply(message, context, text("admin_unknown_user", lang, user=html.escape(token)))
        return None
    return user, args[1:]


@dataclass(frozen=True)
class AdminRequest:
    lang: Lang
    message: Message
    admin_id: int
    user: User  # whom the command is about
    rest: list[str]  # the arguments after the user


async def _admin_request(
    update: Update, context: BotContext, *, values: int
) -> AdminRequest | None:
    """Refuse non-admins, then resolve the target user; None once the admin was answered."""
    lang = await _admin_lang(update, context)
    if lang is None:
        return None
    message = update.effective_message
    admin = update.effective_user
    assert message is not None and admin is not None
    found = await _target(update, context, list(context.args or []), lang, values=values)
    if found is None:
        return None
    return AdminRequest(lang, message, admin.id, *found)


def _is_int(token: str) -> bool:
    return bool(re.fullmatch(r"-?\d+", token))


def _who(user: User) -> str:
    if not user.username and user.display_name == placeholder_name(user.user_id):
        return f"<code>{user.user_id}</code>"  # never wrote: the id is all we know
    name = f"@{user.username}" if user.username else user.display_name
    return f"{html.escape(name)} (<code>{user.user_id}</code>)"


async def set_quota(update: Update, context: BotContext) -> None:
    """/setquota <user> <n|default>: a personal monthly limit."""
    request = await _admin_request(update, context, values=1)
    if request is None:
        return
    lang, store = request.lang, context.services.store
    value = request.rest[0].lower() if request.rest else ""
    if value == "default":
        limit: int | None = None
    elif value.isdigit() and int(value) <= MAX_ADMIN_IMAGES:
        limit = int(value)
    else:
        await reply(request.message, context, text("admin_usage_setquota", lang))
        return
    await store.set_monthly_limit(request.admin_id, request.user.user_id, limit,
                                  update_id=update.update_id)
    status = await store.quota_status(request.user.user_id)
    await reply(request.message, context, text(
        "admin_quota_set", lang, user=_who(request.user), limit=status.limit,
        remaining=status.remaining,
    ))


async def grant(update: Update, context: BotContext) -> None:
    """/grant <user> <n>: extra images for this month (negative takes back)."""
    request = await _admin_request(update, context, values=1)
    if request is None:
        return
    lang, rest = request.lang, request.rest
    if not rest or not _is_int(rest[0]) or not 0 < abs(int(rest[0])) <= MAX_ADMIN_IMAGES:
        await reply(request.message, context, text("admin_usage_grant", lang))
        return
    images = int(rest[0])
    status = await context.services.store.grant_extra(
        request.admin_id, request.user.user_id, images, update_id=update.update_id
    )
    await reply(request.message, context, text(
        "admin_granted", lang, user=_who(request.user), images=images, granted=status.granted,
        remaining=status.remaining,
    ))


async def ban(update: Update, context: BotContext) -> None:
    """/ban <user>."""
    await _set_banned(update, context, banned=True)


async def unban(update: Update, context: BotContext) -> None:
    """/unban <user>."""
    await _set_banned(update, context, banned=False)


async def _set_banned(update: Update, context: BotContext, *, banned: bool) -> None:
    request = await _admin_request(update, context, values=0)
    if request is None:
        return
    user = request.user
    if banned and context.services.is_admin(user.user_id):
        await reply(request.message, context, text("admin_cannot_ban_admin", request.lang))
        return
    await context.services.store.set_banned(request.admin_id, user.user_id, banned,
                                            update_id=update.update_id)
    await reply(request.message, context, text(
        "admin_banned" if banned else "admin_unbanned", request.lang, user=_who(user)
    ))


async def usage(update: Update, context: BotContext) -> None:
    """/usage [YYYY-MM]: totals by model and function, cost, spend against the budget, free
    allowance, top users."""
    lang = await _admin_lang(update, context)
    if lang is None:
        return
    message = update.effective_message
    assert message is not None
    args = list(context.args or [])
    month = args[0] if args else None
    if month is not None and not MONTH_PATTERN.match(month):
        await reply(message, context, text("admin_usage_usage", lang))
        return
    report = await context.services.store.usage_report(month)
    lines = [text("usage_header", lang, month=report.month, images=report.total_images,
                  cost=f"{report.total_cost_yuan:.2f}")]
    lines.append(await _spend_line(context, report.month, lang))
    revenue = await context.services.store.star_revenue(report.month)
    if revenue.payments_total or context.services.settings.star_packs:
        lines.append(text(
            "usage_stars", lang, paid_month=revenue.paid_month,
            payments_month=revenue.payments_month, refunded_month=revenue.refunded_month,
            refunds_month=revenue.refunds_month, paid_total=revenue.paid_total,
            payments_total=revenue.payments_total, refunded_total=revenue.refunded_total,
            refunds_total=revenue.refunds_total,
        ))
    for line in report.lines:
        lines.append(f"• {html.escape(line.model)} / {html.escape(line.function or '-')}: "
                     f"{line.images} · ¥{line.cost_yuan:.2f}")
    for model, (used, allowance) in sorted(report.free_allowance.items()):
        lines.append(text("usage_free", lang, model=html.escape(model), used=used,
                          allowance=allowance))
    if report.top_users:
        lines.append(text("usage_top", lang))
        for top in report.top_users:
            name = f"@{top.username}" if top.username else top.display_name
            lines.append(f"  {html.escape(name)} (<code>{top.user_id}</code>): {top.images}")
    await reply(message, context, "\n".join(lines))


async def _spend_line(context: BotContext, month: str, lang: Lang) -> str:
    """The month's estimated spend (delivered plus in progress) against MONTHLY_BUDGET_YUAN."""
    spent = await context.services.store.estimated_spend(month)
    budget = context.services.settings.monthly_budget_yuan
    if budget is None:
        return text("usage_no_budget", lang, spent=yuan(spent))
    return text("usage_budget", lang, spent=yuan(spent), budget=yuan(budget),
                percent=percent_of(spent, budget))


async def queue(update: Update, context: BotContext) -> None:
    """/queue: jobs waiting and running."""
    lang = await _admin_lang(update, context)
    if lang is None:
        return
    message = update.effective_message
    assert message is not None
    store = context.services.store
    queued = await store.queued_jobs_fair()
    active = await store.active_jobs()
    lines = [text("queue_header", lang, queued=len(queued), active=len(active))]
    for job in active[:20]:
        lines.append(f"▶️ #{job.id} {html.escape(job.command)} · user <code>{job.user_id}</code>"
                     f" · {job.state.value}")
    for position, job in enumerate(queued[:20], start=1):
        lines.append(f"{position}. #{job.id} {html.escape(job.command)} · user "
                     f"<code>{job.user_id}</code>")
    await reply(message, context, "\n".join(lines))


async def refund(update: Update, context: BotContext) -> None:
    """/refund <user> <telegram_payment_charge_id>: give a Stars payment back (refundStarPayment)
    and take back the pack's images still unused."""
    request = await _admin_request(update, context, values=1)
    if request is None:
        return
    lang, message, store = request.lang, request.message, context.services.store
    if len(request.rest) != 1:
        await reply(message, context, text("admin_usage_refund", lang))
        return
    charge = request.rest[0]
    shown = html.escape(charge)
    payment = await store.star_payment(charge)
    if payment is None or payment.user_id != request.user.user_id:
        await reply(message, context, text("admin_refund_unknown", lang, charge=shown,
                                           user=_who(request.user)))
        return
    if payment.state is StarPaymentState.REFUNDED:
        await reply(message, context, text("admin_refund_again", lang, charge=shown,
                                           when=_moment(context, payment.refunded_at)))
        return
    key = "admin_refunded"
    try:
        await context.bot.refund_star_payment(payment.user_id, charge)
    except TelegramError as exc:
        # Refunded already (from an earlier /refund whose ledger write was lost, or by
        # Telegram): the ledger catches up. Anything else changes nothing here.
        if "ALREADY_REFUNDED" not in str(exc).upper():
            await reply(message, context, text("admin_refund_failed", lang, charge=shown,
                                               reason=html.escape(str(exc))))
            return
        key = "admin_refund_synced"
    done = await store.refund_star_payment(request.admin_id, charge)
    if not done.refunded:  # another admin's /refund got there first
        await reply(message, context, text("admin_refund_again", lang, charge=shown,
                                           when=_moment(context, done.payment.refunded_at)))
        return
    await reply(message, context, text(
        key, lang, user=_who(request.user), stars=payment.stars, charge=shown,
        removed=done.images_removed, images=payment.pack_images, purchased=done.purchased,
    ))


def _moment(context: BotContext, moment: datetime | None) -> str:
    if moment is None:
        return "?"
    return moment.astimezone(context.services.settings.tz).strftime("%Y-%m-%d %H:%M")
