"""The one exception hierarchy of the project.

Every error we raise on purpose derives from :class:`BotError`, so the central error handler can
tell our own, explained failures (which become a message for the user) from bugs (which are
logged with a traceback). Foreign exceptions are wrapped once, with ``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal


class BotError(Exception):
    """Root of every error the bot raises on purpose.

    ``key`` names the catalogue text that explains the error to a user and ``text_params`` fills
    it; ``bot.texts.render_error`` turns any error into words with these two alone.
    """

    key: str = "fail_generic"

    def text_params(self) -> Mapping[str, object]:
        return {}

    @property
    def example_key(self) -> str:
        """Catalogue key of a command that works, shown beside the problem; "" for none."""
        return ""

    @property
    def reason_code(self) -> str:
        """A short machine-readable reason, stored with a failed job and logged."""
        return type(self).__name__


# --- configuration ---------------------------------------------------------------------------


class ConfigError(BotError):
    """A setting is missing or malformed; the message names the variable."""

    def __init__(self, variable: str, reason: str) -> None:
        self.variable = variable
        self.reason = reason
        super().__init__(f"{variable}: {reason}")


class StartupError(BotError):
    """Start-up cannot go on; ``str(self)`` is the one line that says why, never a secret.

    ``exit_code`` is one of ``bot.startup.ExitCode``.
    """

    def __init__(self, exit_code: int, line: str) -> None:
        super().__init__(line)
        self.exit_code = exit_code


# --- requests we refuse before calling anyone ------------------------------------------------


class RequestValidationError(BotError):
    """An edit request breaks the API reference's limits; says which field and why.

    The field and the reason are API words, for the log: the user reads plain advice.
    """

    key = "fail_invalid"

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class CommandParseError(BotError):
    """A user's command text could not be turned into a request.

    ``key`` names the message in the text catalogue, ``params`` fill it; ``command`` (a
    ``bot.commands.Command`` value, "" for none) picks the example shown beside the problem,
    catalogue entry ``example_<command>``, in the reader's language.
    """

    def __init__(self, key: str, command: str = "", /, **params: object) -> None:
        self.key = key
        self.command = command
        self.params = params
        super().__init__(f"{key} {params}")

    def text_params(self) -> Mapping[str, object]:
        return self.params

    @property
    def example_key(self) -> str:
        return f"example_{self.command}" if self.command else ""

    @property
    def reason_code(self) -> str:
        return self.key


class BoxParseError(CommandParseError):
    """A ``box=`` of /erase is malformed: the example shown is one with a box."""

    @property
    def example_key(self) -> str:
        return "example_erase_box"


class ImageError(BotError):
    """An image (photo, document or mask) cannot be used; ``key`` names the catalogue message."""

    def __init__(self, key: str, detail: str = "", **params: object) -> None:
        self.key = key
        self.detail = detail
        self.params = params
        super().__init__(f"{key}: {detail}" if detail else key)

    def text_params(self) -> Mapping[str, object]:
        return self.params

    @property
    def reason_code(self) -> str:
        return self.key


class BannedError(BotError):
    """An admin has banned the user: nothing they ask for runs."""

    key = "banned"

    def __init__(self) -> None:
        super().__init__("the user is banned")


# --- storage -----------------------------------------------------------------------------------


class StoreError(BotError):
    """The store cannot do what was asked."""


class UnsupportedDatabaseError(StoreError):
    """DATABASE_URL names a scheme we have no backend for, or a schema newer than this code."""


class QuotaExceededError(StoreError):
    """A reservation would exceed the user's monthly limit (``limit`` includes grants)."""

    key = "quota_exceeded"

    def __init__(
        self, remaining: int, requested: int, *, limit: int, resets_on: str,
        for_sale: bool = False,
    ) -> None:
        self.remaining = remaining
        self.requested = requested
        self.limit = limit
        self.resets_on = resets_on  # the first day of the next month in QUOTA_TIMEZONE
        # Images are on sale (STAR_PACKS): the message points to /buy, not to an admin.
        self.key = "quota_exceeded_buy" if for_sale else "quota_exceeded"
        super().__init__(f"requested {requested}, {remaining} remaining of {limit}")

    def offering_packs(self) -> QuotaExceededError:
        """The same refusal, pointing to /buy."""
        return QuotaExceededError(self.remaining, self.requested, limit=self.limit,
                                  resets_on=self.resets_on, for_sale=True)

    def text_params(self) -> Mapping[str, object]:
        return {"remaining": self.remaining, "requested": self.requested, "limit": self.limit,
                "reset": self.resets_on}


class BudgetExceededError(StoreError):
    """A request would take the month's estimated spend past MONTHLY_BUDGET_YUAN.

    ``spent`` is the month's spend before it (yuan, list price, delivered plus reserved),
    ``cost`` the request's own; ``resets_on`` is the first day of the next month.
    """

    key = "budget_exceeded"

    def __init__(
        self, *, month: str, spent: Decimal, cost: Decimal, budget: Decimal, resets_on: str
    ) -> None:
        self.month = month
        self.spent = spent
        self.cost = cost
        self.budget = budget
        self.resets_on = resets_on
        super().__init__(f"{month}: spent ¥{spent} + ¥{cost} would pass the budget ¥{budget}")

    def text_params(self) -> Mapping[str, object]:
        return {"reset": self.resets_on}


class IllegalTransitionError(StoreError):
    """A job was asked to move to a state its current state does not lead to."""

    def __init__(self, job_id: int, current: str, target: str) -> None:
        self.job_id = job_id
        self.current = current
        self.target = target
        super().__init__(f"job {job_id}: {current} -> {target} is not allowed")


class StoreUnavailableError(StoreError):
    """The database cannot be used right now (locked, full, read-only, I/O); may pass."""

    key = "fail_store"


class UnknownUserError(StoreError):
    """An admin command named a user the bot has never seen."""


class JobNotFoundError(StoreError):
    """No job has this id."""


class StarPaymentNotFoundError(StoreError):
    """No payment in the Stars ledger has this telegram_payment_charge_id."""


# --- DashScope ---------------------------------------------------------------------------------


class DashScopeError(BotError):
    """Anything that went wrong talking to DashScope.

    ``code`` is the service's error code (or our own for transport failures), ``status`` the HTTP
    status when there was one.
    """

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.request_id = request_id
        text = f"{code}: {message}" if message else code
        if status is not None:
            text = f"HTTP {status} {text}"
        super().__init__(text)

    @property
    def reason_code(self) -> str:
        return self.code


def service_advice(code: str, message: str) -> str | None:
    """Catalogue key of plain advice for a service error we know (by its code or its message,
    as listed in dashscope-facts.md), or None.

    The service's own words are English and mean little to users ("algorithm process error"):
    they stay in the log and on the job, and the user reads what to do about it.
    """
    words = " ".join(message.casefold().split())
    if "image" in words and any(phrase in words for phrase in ("size of", "image size")):
        # "the size of input image is too small or to large", "The size of the input image ..."
        return "fail_image_size"
    if code.startswith("InvalidURL") or any(
        phrase in words for phrase in ("download error", "read image error", "decode image")
    ):
        return "fail_image_unreadable"
    if code.startswith("InternalError") or "algorithm process error" in words:
        return "fail_try_again"
    return None


class _ServiceAdvice(DashScopeError):
    """A service error whose text for the user is advice picked by :func:`service_advice`,
    else the class's own ``key``; never the service's message."""

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(code, message, status=status, request_id=request_id)
        advice = self._advice(code, message)
        if advice is not None:
            self.key = advice

    @staticmethod
    def _advice(code: str, message: str) -> str | None:
        return service_advice(code, message)


class InvalidRequestError(_ServiceAdvice):
    """The service rejected the request's parameters (InvalidParameter, InvalidURL, ...)."""

    key = "fail_invalid"


class ContentRefusedError(DashScopeError):
    """The input or output failed content inspection (DataInspectionFailed, IPInfringement...)."""

    key = "fail_content"


class AccountError(DashScopeError):
    """A problem with the account that only an admin can fix (key, arrears, allocation quota)."""

    key = "fail_account"


class RetryableError(DashScopeError):
    """Throttling, 5xx, timeouts, connection errors: may succeed if tried again later."""

    key = "fail_busy"

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message, status=status, request_id=request_id)
        self.retry_after = retry_after


class ServiceBusyError(RetryableError):
    """A retryable error that outlasted the retry budget."""


class SubmitOutcomeUnknownError(DashScopeError):
    """A submit may have reached the service but its answer was lost; never repeated blindly."""

    key = "fail_unconfirmed"


class TaskFailedError(_ServiceAdvice):
    """The task ran and ended FAILED (or CANCELED), or produced no usable image."""

    key = "fail_task"


class BrokenResultError(TaskFailedError):
    """A result DashScope handed out is not a readable image (not an image, or cut short).

    The service's failure, not the user's picture: that one is refunded like a failed task and
    never forwarded to Telegram.
    """

    key = "fail_broken_result"

    @staticmethod
    def _advice(code: str, message: str) -> str | None:
        return None  # our own code and Pillow's words: nothing the service said applies


class TaskUnknownError(DashScopeError):
    """The service no longer knows the task (UNKNOWN: never existed, or expired after 24 h)."""

    key = "fail_expired"


class ResultExpiredError(DashScopeError):
    """A result URL could not be downloaded any more (403/404 on the signed URL)."""

    key = "fail_expired"


# --- delivery ----------------------------------------------------------------------------------


class DeliveryError(BotError):
    """The result could not be handed to the user (they blocked the bot, the chat is gone)."""

    key = "fail_delivery"

    def __init__(self, reason: str, *, permanent: bool) -> None:
        self.reason = reason
        self.permanent = permanent
        super().__init__(reason)


# --- the Mini App (bot/web) --------------------------------------------------------------------


class WebAuthError(BotError):
    """A request to the bot's web server could not be trusted: it is refused and runs nothing.

    ``reason`` is for the log (never a secret); the page shows the catalogue text.
    """

    key = "miniapp_auth_failed"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class InitDataError(WebAuthError):
    """``Telegram.WebApp.initData`` is missing, malformed, or not signed with our bot token."""


class InitDataExpiredError(InitDataError):
    """``initData`` was signed too long ago (``auth_date`` older than allowed)."""


class LinkError(WebAuthError):
    """A Mini App link's token is malformed or its signature does not match."""

    key = "miniapp_link_invalid"


class LinkExpiredError(LinkError):
    """A Mini App link's token is past its expiry."""
