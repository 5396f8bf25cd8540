"""Wiring: build the Application, open resources at start, close them at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import functools
import logging
import sqlite3
from collections.abc import Iterable
from typing import Any

import aiohttp
from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.error import BadRequest, Forbidden, InvalidToken, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    PreCheckoutQueryHandler,
    TypeHandler,
    filters,
)

from bot import callback_data
from bot.access import AccessPolicy
from bot.albums import ALBUM_MEMORY
from bot.bailian import DEFAULT_RETRY_POLICY, BailianClient, PollPolicy, RetryPolicy
from bot.bailian.client import REQUEST_TIMEOUT
from bot.config import Settings
from bot.conversations import Conversations
from bot.errors import BotError, StartupError, StoreError
from bot.jobs import JobService
from bot.jobs.presses import PRESS_MEMORY
from bot.jobs.run import WATCH_INTERVAL
from bot.leader import Role, leadership_for
from bot.metrics import Metrics
from bot.services import SERVICES_KEY, BotApplication, BotContext, Services
from bot.startup import ExitCode
from bot.telegram_io import TelegramMessenger
from bot.texts import Lang, render_error, text
from bot.web import WebServer
from bot.web.health import HealthRoutes
from bot.web.server import WebExtras
from bot.web.webhook import WebhookReceiver
from handlers import access, admin, albums, callbacks, edit, info, masks, payments, throttle
from handlers.common import HandledUpdates, language_of, track_user
from handlers.filters import COMMAND_TEXT, IMAGE, IN_ALBUM, NEW_MESSAGE, REPLIES_TO_IMAGE
from storage import Store, open_store
from storage.factory import is_sqlite, masked_url

logger = logging.getLogger(__name__)

# The commands shown in Telegram's menu, in this order; descriptions come from the catalogue.
MENU_COMMANDS = (
    "edit", "style", "localstyle", "instruct", "erase", "dewatermark", "expand", "upscale",
    "colorize", "sketch", "cartoon", "quota", "buy", "lang", "cancel", "id", "help",
    "paysupport", "terms",
)
# Added to the menu in each admin's private chat only.
ADMIN_MENU_COMMANDS = ("setquota", "grant", "ban", "unban", "usage", "refund", "queue")
# Telegram allows this many retries after a 429 before a send fails.
FLOOD_RETRIES = 3
# Telegram's flood limits per bot token: about 30 messages a second in all, 20 a minute in one
# group. Instances sharing a token split them (INSTANCE_COUNT).
TELEGRAM_MESSAGES_PER_SECOND = 30
TELEGRAM_GROUP_MESSAGES_PER_MINUTE = 20
# Expired conversations (an unanswered mask wait, an unused keyboard) are deleted this often.
PRUNE_INTERVAL_SECONDS = 600.0
PRUNE_TASK_KEY = "prune_task"


def build_application(
    settings: Settings,
    *,
    poll_policy: PollPolicy | None = None,
    retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    request_timeout: float = REQUEST_TIMEOUT,
    web_extras: WebExtras | None = None,
) -> BotApplication:
    """The Application with every handler registered, in one place.

    ``poll_policy``, ``retry_policy`` and ``request_timeout`` tune the DashScope adapter (tests
    use short ones); ``web_extras`` are the playground's additions to the web server.
    """
    context_types = ContextTypes(context=BotContext)
    application: BotApplication = (
        Application.builder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_base_url)
        .base_file_url(settings.telegram_base_file_url)
        .context_types(context_types)
        .rate_limiter(flood_limiter(settings.instance_count))
        # Accepting a request downloads and checks an image: let updates run side by side.
        .concurrent_updates(32)
        .post_init(_open_services)
        .post_stop(_stop_runner)
        .post_shutdown(_close_services)
        .build()
    )
    application.bot_data["settings"] = settings
    application.bot_data["poll_policy"] = poll_policy
    application.bot_data["retry_policy"] = retry_policy
    application.bot_data["request_timeout"] = request_timeout
    application.bot_data["web_extras"] = web_extras

    # Every route, in the order they are tried (the first match handles an update).
    handled = HandledUpdates()  # an update Telegram sends again is handled once
    gate = access.AccessGate(AccessPolicy.from_settings(settings))  # the allow-lists
    application.add_handler(TypeHandler(Update, gate.check), group=-4)
    application.add_handler(TypeHandler(Update, throttle.cheap_requests), group=-3)
    application.add_handler(TypeHandler(Update, handled.skip), group=-2)
    application.add_handler(TypeHandler(Update, track_user), group=-1)
    for name, callback in (
        ("start", info.start), ("help", info.help_command), ("quota", info.quota),
        ("lang", info.lang_command), ("cancel", info.cancel), ("id", info.show_id),
        ("setquota", admin.set_quota), ("grant", admin.grant), ("ban", admin.ban),
        ("unban", admin.unban), ("usage", admin.usage), ("queue", admin.queue),
        ("refund", admin.refund), ("buy", payments.buy), ("paysupport", payments.pay_support),
        ("terms", payments.terms),
    ):
        application.add_handler(
            CommandHandler(name, callback, filters=filters.UpdateType.MESSAGE)
        )
    # An album's images are gathered and handled together (handlers/albums.py).
    application.add_handler(MessageHandler(
        NEW_MESSAGE & IMAGE & IN_ALBUM, albums.on_album_part
    ))
    application.add_handler(MessageHandler(NEW_MESSAGE & COMMAND_TEXT, edit.on_command))
    application.add_handler(MessageHandler(NEW_MESSAGE & IMAGE, edit.on_image))
    application.add_handler(MessageHandler(
        NEW_MESSAGE & filters.TEXT & REPLIES_TO_IMAGE, edit.on_reply_text
    ))
    application.add_handler(MessageHandler(
        NEW_MESSAGE & filters.ChatType.PRIVATE & filters.TEXT, edit.on_private_text
    ))
    application.add_handler(MessageHandler(
        NEW_MESSAGE & filters.ChatType.GROUPS & filters.TEXT, masks.on_group_text
    ))
    for route, pattern in (
        (callbacks.again, callback_data.Again.PATTERN),
        (callbacks.upscale, callback_data.Upscale.ROUTE),
        (callbacks.pick_action, callback_data.PickAction.PATTERN),
        (callbacks.pick_style, callback_data.PickStyle.PATTERN),
        (callbacks.cancel_job, callback_data.CancelJob.PATTERN),
        (callbacks.mask_choice, callback_data.MaskChoice.PATTERN),
        (callbacks.mask_preview, callback_data.MaskPreview.PATTERN),
    ):
        application.add_handler(CallbackQueryHandler(route, pattern=pattern))
    # Telegram Stars (handlers/payments.py): a pack's button, the question before the charge,
    # the payment itself.
    application.add_handler(CallbackQueryHandler(payments.buy_pack,
                                                 pattern=callback_data.BuyPack.PATTERN))
    application.add_handler(PreCheckoutQueryHandler(payments.pre_checkout))
    application.add_handler(MessageHandler(filters.SUCCESSFUL_PAYMENT,
                                           payments.successful_payment))
    application.add_handler(CallbackQueryHandler(callbacks.expired))
    application.add_handler(TypeHandler(Update, handled.record), group=1)
    application.add_error_handler(on_error)
    return application


def flood_limiter(instances: int) -> AIORateLimiter:
    """PTB's limiter at this instance's share of the token's flood limits: the leader sends the
    results, the others short answers, and all of them together stay within Telegram's."""
    return AIORateLimiter(
        overall_max_rate=TELEGRAM_MESSAGES_PER_SECOND / instances, overall_time_period=1,
        group_max_rate=TELEGRAM_GROUP_MESSAGES_PER_MINUTE / instances, group_time_period=60,
        max_retries=FLOOD_RETRIES,
    )


async def _open_services(application: BotApplication) -> None:
    settings: Settings = application.bot_data["settings"]
    me = application.bot.bot  # getMe's answer, cached by initialize()
    if not me.username:  # every bot has one; commands like /edit@name depend on it
        raise RuntimeError("getMe returned no username")
    try:
        store = await open_store(
            settings.database_url, default_limit=settings.monthly_quota, tz=settings.tz
        )
    except (StoreError, sqlite3.Error, OSError) as exc:
        raise StartupError(
            ExitCode.DATABASE, f"Database unusable: {masked_url(settings.database_url)}: {exc}"
        ) from exc
    session = aiohttp.ClientSession()
    metrics = Metrics()
    if settings.star_packs:
        metrics.sell_stars()
    client = BailianClient(
        session,
        api_root=settings.dashscope_api_root,
        api_key=settings.dashscope_api_key,
        qps=settings.dashscope_qps,
        max_tasks=settings.dashscope_max_tasks,
        poll_interval=settings.dashscope_poll_interval,
        poll_policy=application.bot_data["poll_policy"],
        retry=application.bot_data["retry_policy"],
        request_timeout=application.bot_data["request_timeout"],
        task_patience=settings.dashscope_task_patience,
        metrics=metrics,
    )
    messenger = TelegramMessenger(application.bot)
    jobs = JobService(
        store=store,
        client=client,
        messenger=messenger,
        admin_ids=settings.admin_user_ids,
        # Twice the slots: while one job of a slot is being delivered, the next is ready to submit.
        wanx_workers=2 * settings.dashscope_max_tasks,
        outage_wait=settings.dashscope_outage_wait,
        task_patience=settings.dashscope_task_patience,
        budget_yuan=settings.monthly_budget_yuan,
        images_for_sale=bool(settings.star_packs),
        metrics=metrics,
        # Several instances may share PostgreSQL: the leader looks for what others queued.
        watch_interval=None if is_sqlite(settings.database_url) else WATCH_INTERVAL,
    )
    # Stored at once: whatever fails from here on, post_shutdown closes what was opened.
    application.bot_data[SERVICES_KEY] = Services(
        settings=settings, store=store, session=session, client=client, messenger=messenger,
        jobs=jobs, conversations=Conversations(store), bot_username=me.username,
        metrics=metrics,
    )
    try:
        await register_commands(application)
    except InvalidToken:
        raise
    except TelegramError as exc:  # the menu is a convenience: no reason not to serve
        logger.warning("the command menu was not set (%s); it stays as it was", exc)
    services = application.bot_data[SERVICES_KEY]
    if is_sqlite(settings.database_url):
        # The instance lock makes this the file's only process: every claim is a dead one's.
        await store.release_claims()
    services.leadership = leadership_for(
        settings.database_url, on_elected=functools.partial(_lead, services),
        on_lost=functools.partial(_follow, services),
    )
    await services.leadership.start()
    application.bot_data[PRUNE_TASK_KEY] = asyncio.create_task(
        _prune_conversations(application.bot_data[SERVICES_KEY].conversations, store,
                             retention=dtm.timedelta(days=settings.retention_days))
    )
    await _start_web(application, application.bot_data["web_extras"])
    if not settings.admin_user_ids:
        logger.warning(
            "no admin is configured: nobody is alerted to DashScope account problems and nobody "
            "can use the admin commands; set ADMIN_USER_IDS to your numeric Telegram user id "
            "(send /id to the bot to see it)"
        )
    logger.info("bot @%s started", me.username)


async def _lead(services: Services) -> None:
    """Elected (at once on SQLite): run the job pipeline, resuming what was left."""
    services.metrics.lead(True)
    resumed = await services.jobs.start()
    try:  # telling the admins is never a reason not to serve
        await services.jobs.alerts.started(resumed)
    except BotError as exc:
        logger.warning("the admins were not told of the start: %s", exc)


async def _follow(services: Services) -> None:
    """Leadership lost (or stopping): no more DashScope calls from here; requests still come
    in and wait in the store for the leader."""
    services.metrics.lead(False)
    await services.jobs.stop()


async def _start_web(application: BotApplication, extras: WebExtras | None) -> None:
    """The web server, when PUBLIC_URL, WEBHOOK_URL or WEB_SERVER=on asks for it: the Mini App
    (PUBLIC_URL only), the webhook (WEBHOOK_URL only), health and metrics (always); the
    playground's page in the playground (``extras``)."""
    services: Services = application.bot_data[SERVICES_KEY]
    settings = services.settings
    if not settings.serves_web:
        return
    # The playground's own page is the client there, and it takes http.
    if (settings.public_url is not None and settings.public_url.startswith("http://")
            and extras is None):
        logger.warning(
            "PUBLIC_URL %s is plain http: Telegram opens Mini Apps only over https, so the "
            "\"Draw the mask\" button will be refused; use https in production",
            settings.public_url,
        )
    web = WebServer(
        desk=masks.MaskDesk(services) if settings.public_url is not None else None,
        bot_token=settings.telegram_bot_token, public_url=settings.public_url,
        host=settings.web_host, port=settings.web_port, health=_health(services),
        webhook=_webhook(application), extras=extras,
    )
    await web.start()
    services.web = web


def _health(services: Services) -> HealthRoutes:
    client = services.client

    def role() -> Role:
        leadership = services.leadership
        return leadership.role if leadership is not None else Role.FOLLOWER

    async def store_answers() -> None:
        await services.store.job_counts()

    async def metrics() -> bytes:
        return await services.metrics.render(services.store, lambda: client.slots.in_use)

    # Only the leader talks to DashScope: a follower is ready without it.
    return HealthRoutes(checks={"store": store_answers}, leader_checks={
        "dashscope": client.reachable}, role=role, metrics=metrics)


def _webhook(application: BotApplication) -> WebhookReceiver | None:
    """The webhook route: an update posted there takes the same queue as a polled one."""
    settings: Settings = application.bot_data["settings"]
    if settings.webhook_url is None:
        return None

    async def sink(payload: dict[str, Any]) -> None:
        await application.update_queue.put(Update.de_json(payload, application.bot))

    return WebhookReceiver(url=settings.webhook_url, secret=settings.webhook_secret, sink=sink)


async def register_commands(application: BotApplication) -> None:
    """The command menu in Chinese, English, and a default (English); admins also get theirs."""
    for lang, code in ((Lang.ZH, "zh"), (Lang.EN, "en"), (Lang.EN, None)):
        await application.bot.set_my_commands(
            _menu(MENU_COMMANDS, lang), scope=BotCommandScopeDefault(), language_code=code
        )
    services: Services = application.bot_data[SERVICES_KEY]
    for admin_id in sorted(services.settings.admin_user_ids):
        await _register_admin_commands(application, services.store, admin_id)


async def _register_admin_commands(
    application: BotApplication, store: Store, admin_id: int
) -> None:
    """Public and admin commands in one admin's private chat, in the admin's language.

    Set for Chinese clients and as the chat's default: a known admin gets their language in
    both (so no menu of an earlier start stays behind), an unknown one Chinese and English.
    """
    user = await store.get_user(admin_id)
    known: Lang | None = None
    if user is not None and user.language in ("zh", "en"):
        known = Lang(user.language)
    elif user is not None and user.telegram_language:
        known = Lang.from_code(user.telegram_language)
    names = MENU_COMMANDS + ADMIN_MENU_COMMANDS
    try:
        for lang, code in ((known or Lang.ZH, "zh"), (known or Lang.EN, None)):
            await application.bot.set_my_commands(
                _menu(names, lang), scope=BotCommandScopeChat(chat_id=admin_id),
                language_code=code,
            )
    except (BadRequest, Forbidden) as exc:  # e.g. "chat not found": they never started the bot
        logger.info("admin %s gets no admin menu until they start the bot and it restarts (%s)",
                    admin_id, exc)


def _menu(names: Iterable[str], lang: Lang) -> list[BotCommand]:
    return [BotCommand(name, text(f"menu_{name}", lang)) for name in names]


async def _prune_conversations(
    conversations: Conversations, store: Store, *, retention: dtm.timedelta
) -> None:
    """Delete expired conversations now and then (reads ignore them already), old presses and
    album parts, and clear the heavy fields of jobs finished more than ``retention`` ago
    (RETENTION_DAYS)."""
    while True:
        try:
            pruned = await conversations.prune()
            await store.forget_old_updates()  # handled update ids, kept 48 h
            now = dtm.datetime.now(dtm.UTC)
            await store.prune_presses(now - PRESS_MEMORY)
            await store.prune_album_parts(now - ALBUM_MEMORY)
            jobs = await store.prune_old_jobs(now - retention)
        except Exception:  # a busy database now is no reason to stop pruning later
            logger.exception("pruning conversations failed")
        else:
            if pruned:
                logger.info("pruned %d expired conversations", pruned)
            if jobs:
                logger.info("cleared the masks and result links of %d old jobs", jobs)
        await asyncio.sleep(PRUNE_INTERVAL_SECONDS)


async def _stop_runner(application: BotApplication) -> None:
    prune = application.bot_data.pop(PRUNE_TASK_KEY, None)
    if isinstance(prune, asyncio.Task):
        prune.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await prune
    services = application.bot_data.get(SERVICES_KEY)
    if isinstance(services, Services):
        if services.web is not None:  # no drawn mask may reach the jobs once they stop
            await services.web.stop()
        if services.leadership is not None:  # a leader steps down (and stops the jobs)
            await services.leadership.stop()
        await services.jobs.stop()


async def _close_services(application: BotApplication) -> None:
    # Also when the Application never ran (start-up failed after post_init): post_stop did not.
    await _stop_runner(application)
    services = application.bot_data.pop(SERVICES_KEY, None)
    if not isinstance(services, Services):
        return
    await services.client.close()
    await services.session.close()
    await services.store.close()


async def on_error(update: object, context: BotContext) -> None:
    """Log every unexpected error with its traceback; tell the user something useful."""
    error = context.error
    if isinstance(error, BotError):
        logger.warning("handled error: %s", error)
    else:
        logger.error("error while handling an update", exc_info=error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    lang = await _safe_language(update, context)
    services: Any = context.application.bot_data.get(SERVICES_KEY)
    if not isinstance(services, Services):
        return
    message = update.effective_message
    try:
        await services.messenger.send_text(
            update.effective_chat.id, render_error(error if isinstance(error, BotError)
                                                   else BotError(), lang),
            reply_to=message.message_id if message else None,
        )
    except BotError:
        logger.info("could not tell the user about the error")


async def _safe_language(update: Update, context: BotContext) -> Lang:
    try:
        return await language_of(update, context)
    except Exception:
        return Lang.EN
