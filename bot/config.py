"""One typed settings object, read from the environment and an optional ``.env`` file."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv.parser import parse_stream

from bot.errors import ConfigError
from storage.factory import masked_url

T = TypeVar("T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# STAR_PACKS bounds: a keyboard of at most this many packs; Telegram takes 1-10000 Stars per
# invoice price.
MAX_STAR_PACKS = 10
MAX_PACK_IMAGES = 100_000
MAX_PACK_STARS = 10_000


@dataclass(frozen=True)
class StarPack:
    """Images sold together for a price in Telegram Stars (STAR_PACKS)."""

    images: int
    stars: int


@dataclass(frozen=True)
class Settings:
    telegram_bot_token: str
    dashscope_api_key: str
    telegram_api_url: str = "https://api.telegram.org"
    dashscope_base_url: str = "https://dashscope.aliyuncs.com"
    database_url: str = "sqlite:///data/bot.sqlite3"
    admin_user_ids: frozenset[int] = frozenset()
    # Who may use the bot (bot/access.py): both empty, everyone; admins always may.
    allowed_user_ids: frozenset[int] = frozenset()
    allowed_chat_ids: frozenset[int] = frozenset()
    monthly_quota: int = 30
    # Requests that would take the month's estimated list-price spend past this many yuan are
    # refused; None: no cap.
    monthly_budget_yuan: Decimal | None = None
    quota_timezone: str = "Asia/Shanghai"
    dashscope_qps: float = 10.0
    dashscope_max_tasks: int = 2
    dashscope_poll_interval: float = 2.0
    # How long a job not yet submitted waits out a DashScope outage before it is refunded.
    dashscope_outage_wait: float = 300.0
    # How long a submitted task (billed, or about to be) is followed through errors: task ids
    # and result URLs live 24 h.
    dashscope_task_patience: float = 86400.0
    # Cheap requests (messages that are not edits) a person may send at once, and the seconds
    # after which they may send one more (bot/flood.py).
    cheap_request_burst: int = 10
    cheap_request_interval: float = 0.5
    # Instances sharing the bot's token (several on one PostgreSQL): Telegram's flood limits are
    # per token, so each instance's sender keeps to this share of them (bot/app.py).
    instance_count: int = 1
    # Seconds an album's parts are gathered after the last one arrived (bot/albums.py).
    album_window_seconds: float = 1.0
    # How long start-up keeps trying Telegram (getMe) through network errors, timeouts and 5xx.
    telegram_startup_timeout: float = 120.0
    log_level: str = "INFO"
    # The Mini App for drawing /erase masks (bot/web): where Telegram clients reach the bot's own
    # web server (https in production; None: no web server, masks are sent as images only),
    # and where that server listens.
    public_url: str | None = None
    web_host: str = "0.0.0.0"
    web_port: int = 8080
    # Webhook mode (bot/web/webhook.py): Telegram POSTs updates to this URL, each carrying
    # WEBHOOK_SECRET; None: long polling.
    webhook_url: str | None = None
    webhook_secret: str = ""
    # Serve /healthz, /readyz and /metrics even without PUBLIC_URL or WEBHOOK_URL (WEB_SERVER=on).
    web_server: bool = False
    # "text": one line per record; "json": one JSON object per line (bot/logging_setup.py).
    log_format: str = "text"
    # Finished jobs older than this many days lose their heavy fields (storage: prune_old_jobs).
    retention_days: int = 30
    # Packs of images sold for Telegram Stars (/buy); empty: nothing is sold.
    star_packs: tuple[StarPack, ...] = ()
    # What /paysupport and /terms answer; empty: the catalogue's texts, in the user's language.
    pay_support_text: str = ""
    terms_text: str = ""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.quota_timezone)

    @property
    def telegram_base_url(self) -> str:
        """PTB's ``base_url``: it appends the token itself."""
        return f"{self.telegram_api_url}/bot"

    @property
    def telegram_base_file_url(self) -> str:
        return f"{self.telegram_api_url}/file/bot"

    @property
    def dashscope_api_root(self) -> str:
        return f"{self.dashscope_base_url}/api/v1"

    @property
    def secrets(self) -> tuple[str, ...]:
        # The database's password too: a driver's error may quote its URL.
        return (self.telegram_bot_token, self.dashscope_api_key, self.webhook_secret,
                urlsplit(self.database_url).password or "")

    @property
    def serves_web(self) -> bool:
        """Whether the bot runs its web server (the mask page, the webhook, health, metrics)."""
        return self.web_server or self.public_url is not None or self.webhook_url is not None

    def __repr__(self) -> str:  # never print the secrets, even in a traceback
        return (
            f"Settings(telegram_api_url={self.telegram_api_url!r}, "
            f"dashscope_base_url={self.dashscope_base_url!r}, "
            f"database_url={masked_url(self.database_url)!r})"
        )


def read_dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` lines as python-dotenv reads them: quotes, ``export``, ``#`` comments (also
    after a value), escapes in double quotes; ``${VAR}`` is kept as written.

    A line python-dotenv cannot read, or a key without ``=``, is an error naming the line: its
    public ``dotenv_values`` would only log and skip it, before logging is even set up.
    """
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    with path.open(encoding="utf-8-sig") as stream:  # -sig: an editor's BOM is not in the key
        for binding in parse_stream(stream):
            if binding.key is None and not binding.error:
                continue  # blank lines and comments
            if binding.key is None or binding.value is None:
                # The binding's text starts with the blank lines before it.
                text = binding.original.string
                number = binding.original.line + text[: len(text) - len(text.lstrip())].count("\n")
                raise ConfigError(f"{path}:{number}", "expected KEY=value")
            values[binding.key] = binding.value
    return values


def _parse(env: Mapping[str, str], name: str, default: T, convert: Callable[[str], T]) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return convert(raw)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise ConfigError(name, f"invalid value {raw!r}: {exc}") from exc


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(name, "is required (set it in the environment or in .env)")
    return value


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return raw.rstrip("/")


def _public_url(raw: str) -> str:
    """An http(s) base URL without query or fragment; a path is kept (a proxy's prefix)."""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL, e.g. https://bot.example.com")
    if parts.query or parts.fragment or raw.endswith(("?", "#")):
        raise ValueError("must have no query (?...) or fragment (#...)")
    return raw.rstrip("/")


def _port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be a TCP port, 1 to 65535")
    return value


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError("must be a positive number")
    return value


def _ids(raw: str) -> frozenset[int]:
    """Comma-separated Telegram ids (users, or chats: groups are negative)."""
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    return frozenset(int(part) for part in ids)


def _yuan(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValueError("must be an amount of yuan, e.g. 50 or 12.5") from None
    if not value.is_finite() or value < 0:
        raise ValueError("must be an amount of yuan, not negative")
    return value


def _star_packs(raw: str) -> tuple[StarPack, ...]:
    """``images:stars`` pairs, comma-separated, e.g. ``10:50,50:200``."""
    packs: list[StarPack] = []
    for part in (part.strip() for part in raw.split(",")):
        if not part:
            continue
        match = re.fullmatch(r"([0-9]+)\s*:\s*([0-9]+)", part)
        if match is None:
            raise ValueError(f"{part!r} is not images:stars, e.g. 10:50")
        pack = StarPack(int(match[1]), int(match[2]))
        if not 1 <= pack.images <= MAX_PACK_IMAGES:
            raise ValueError(f"{part!r}: images must be 1 to {MAX_PACK_IMAGES}")
        if not 1 <= pack.stars <= MAX_PACK_STARS:
            raise ValueError(f"{part!r}: Stars must be 1 to {MAX_PACK_STARS}")
        if pack in packs:
            raise ValueError(f"{part!r} is given twice")
        packs.append(pack)
    if len(packs) > MAX_STAR_PACKS:
        raise ValueError(f"at most {MAX_STAR_PACKS} packs")
    return tuple(packs)


def _timezone(raw: str) -> str:
    ZoneInfo(raw)
    return raw


# What Telegram accepts as setWebhook's secret_token.
WEBHOOK_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
LOG_FORMATS = ("text", "json")


def _webhook_secret(raw: str) -> str:
    if WEBHOOK_SECRET_RE.fullmatch(raw) is None:
        raise ValueError(
            "must be 1 to 256 characters, only A-Z a-z 0-9 _ - (Telegram refuses others), "
            "e.g. the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return raw


def _on_off(raw: str) -> bool:
    value = raw.lower()
    if value not in ("on", "off", "true", "false", "1", "0", "yes", "no"):
        raise ValueError("must be on or off")
    return value in ("on", "true", "1", "yes")


def _log_format(raw: str) -> str:
    value = raw.lower()
    if value not in LOG_FORMATS:
        raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}")
    return value


def _webhook(env: Mapping[str, str]) -> tuple[str | None, str]:
    """WEBHOOK_URL and its WEBHOOK_SECRET, which is required with it."""
    url = _parse(env, "WEBHOOK_URL", None, _public_url)
    secret = _parse(env, "WEBHOOK_SECRET", "", _webhook_secret)
    if url is not None and not secret:
        raise ConfigError(
            "WEBHOOK_SECRET", "is required with WEBHOOK_URL: Telegram sends it with every "
            "update so that nobody else can post updates to the bot"
        )
    return url, secret


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def load_settings(
    environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")
) -> Settings:
    """Build the settings; environment variables win over the ``.env`` file."""
    env: dict[str, str] = read_dotenv(dotenv) if dotenv is not None else {}
    env.update(os.environ if environ is None else environ)
    defaults = Settings(telegram_bot_token="", dashscope_api_key="")
    webhook_url, webhook_secret = _webhook(env)
    return Settings(
        telegram_bot_token=_required(env, "TELEGRAM_BOT_TOKEN"),
        dashscope_api_key=_required(env, "DASHSCOPE_API_KEY"),
        telegram_api_url=_parse(env, "TELEGRAM_API_URL", defaults.telegram_api_url, _url),
        dashscope_base_url=_parse(env, "DASHSCOPE_BASE_URL", defaults.dashscope_base_url, _url),
        database_url=_parse(env, "DATABASE_URL", defaults.database_url, str),
        admin_user_ids=_parse(env, "ADMIN_USER_IDS", defaults.admin_user_ids, _ids),
        allowed_user_ids=_parse(env, "ALLOWED_USER_IDS", defaults.allowed_user_ids, _ids),
        allowed_chat_ids=_parse(env, "ALLOWED_CHAT_IDS", defaults.allowed_chat_ids, _ids),
        monthly_quota=_parse(env, "MONTHLY_QUOTA", defaults.monthly_quota, _non_negative_int),
        monthly_budget_yuan=_parse(
            env, "MONTHLY_BUDGET_YUAN", defaults.monthly_budget_yuan, _yuan
        ),
        quota_timezone=_parse(env, "QUOTA_TIMEZONE", defaults.quota_timezone, _timezone),
        dashscope_qps=_parse(env, "DASHSCOPE_QPS", defaults.dashscope_qps, _positive_float),
        dashscope_max_tasks=_parse(
            env, "DASHSCOPE_MAX_TASKS", defaults.dashscope_max_tasks, _positive_int
        ),
        dashscope_poll_interval=_parse(
            env, "DASHSCOPE_POLL_INTERVAL", defaults.dashscope_poll_interval, _positive_float
        ),
        dashscope_outage_wait=_parse(
            env, "DASHSCOPE_OUTAGE_WAIT", defaults.dashscope_outage_wait, _positive_float
        ),
        dashscope_task_patience=_parse(
            env, "DASHSCOPE_TASK_PATIENCE", defaults.dashscope_task_patience, _positive_float
        ),
        cheap_request_burst=_parse(
            env, "CHEAP_REQUEST_BURST", defaults.cheap_request_burst, _positive_int
        ),
        cheap_request_interval=_parse(
            env, "CHEAP_REQUEST_INTERVAL", defaults.cheap_request_interval, _positive_float
        ),
        instance_count=_parse(env, "INSTANCE_COUNT", defaults.instance_count, _positive_int),
        album_window_seconds=_parse(
            env, "ALBUM_WINDOW_SECONDS", defaults.album_window_seconds, _positive_float
        ),
        telegram_startup_timeout=_parse(
            env, "TELEGRAM_STARTUP_TIMEOUT", defaults.telegram_startup_timeout, _positive_float
        ),
        log_level=_parse(env, "LOG_LEVEL", defaults.log_level, _log_level),
        star_packs=_parse(env, "STAR_PACKS", defaults.star_packs, _star_packs),
        pay_support_text=_parse(env, "PAY_SUPPORT_TEXT", defaults.pay_support_text, str),
        terms_text=_parse(env, "TERMS_TEXT", defaults.terms_text, str),
        public_url=_parse(env, "PUBLIC_URL", defaults.public_url, _public_url),
        web_host=_parse(env, "WEB_HOST", defaults.web_host, str),
        web_port=_parse(env, "WEB_PORT", defaults.web_port, _port),
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        web_server=_parse(env, "WEB_SERVER", defaults.web_server, _on_off),
        log_format=_parse(env, "LOG_FORMAT", defaults.log_format, _log_format),
        retention_days=_parse(env, "RETENTION_DAYS", defaults.retention_days, _positive_int),
    )
