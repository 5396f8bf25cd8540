"""/erase's mask: checked request first, then the owner's next image in the chat is the mask.

Three ways to give it besides ``box=`` (which needs no wait): the photo sent back painted over
with the brush of Telegram's photo editor (the strokes become the mask, shown tinted with
[Run] [Redo] [Cancel] before anything is charged), a black-and-white mask image, or a drawing
in the Mini App (:class:`MaskDesk`, when the bot has a public web address). Any other image
(one that neither is a painted copy of the photo nor looks like a mask, bot/images.py
``looks_like_mask``) is asked about before it is used: a photo sent after /erase is most often
a new request, not a mask.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import replace

from telegram import Message, Update

from bot.callback_data import MaskAnswer, MaskChoice, MaskPreview, PreviewStep
from bot.commands import ParsedCommand, parse_command
from bot.conversations import MaskCandidate, MaskQuestion, MaskWait
from bot.errors import BotError, CommandParseError, ImageError, RequestValidationError
from bot.images import prepare_mask_async
from bot.jobs import Refused, Requester
from bot.masks import painted_mask_async, tinted_preview_async
from bot.ports import Button, Keyboard, OutgoingImage
from bot.services import BotContext, Services
from bot.texts import Lang, render_error, text
from handlers.common import ImageRef, language_of, reply, requester

logger = logging.getLogger(__name__)


async def ask_for_mask(
    context: BotContext, who: Requester, parsed: ParsedCommand, source: ImageRef
) -> None:
    """Check the base image and options now, then wait for the mask."""
    services = context.services
    try:
        await services.jobs.check_before_mask(parsed, source.file_id)
    except (RequestValidationError, ImageError) as exc:
        await services.messenger.send_text(who.chat_id, render_error(exc, who.lang),
                                           reply_to=who.message_id)
        return
    key = "erase_ask_mask_group" if who.is_group else "erase_ask_mask"
    keyboard: Keyboard | None = None
    # Telegram allows web_app buttons in private chats only.
    if services.web is not None and services.web.serves_masks and not who.is_group:
        url = services.web.mask_page_url(who.user_id, who.chat_id, who.message_id, who.lang)
        keyboard = ((Button(text("btn_draw_mask", who.lang), web_app=url),),)
    prompt_id = await services.messenger.send_text(
        who.chat_id, text(key, who.lang), reply_to=who.message_id, keyboard=keyboard
    )
    await services.conversations.start_mask_wait(MaskWait(
        user_id=who.user_id, chat_id=who.chat_id, parsed=parsed, file_id=source.file_id,
        request_message_id=who.message_id, prompt_message_id=prompt_id,
    ))


async def mask_received(
    update: Update, context: BotContext, message: Message, wait: MaskWait, mask: ImageRef
) -> None:
    """The owner's image while a mask is awaited: a mask is used; anything that looks like a
    photo is asked about first (a photo sent by mistake must not be thresholded and paid for)."""
    who = await requester(update, context, message)
    await take_mask(context, who, wait, mask, message.caption or "", ask_if_photo=True)


async def take_mask(
    context: BotContext, who: Requester, wait: MaskWait, mask: ImageRef, caption: str, *,
    ask_if_photo: bool,
) -> None:
    """Run the waiting request with ``mask``; its caption may add to the request.

    A painted copy of the photo is previewed first; with ``ask_if_photo`` an image that is
    neither that nor mask-like is asked about. ``who`` names the message that carried the
    mask (answers reply to it).
    """
    services = context.services
    try:
        parsed = _with_caption(wait, caption, services.bot_username)
        if ask_if_photo:  # downloaded once (the inputs' cache), for both looks
            raw = await services.jobs.inputs.raw(mask.file_id)
            if await _preview_if_painted(context, who, wait, mask, raw, parsed):
                return
        is_mask = await services.jobs.check_mask(wait.parsed, wait.file_id, mask.file_id,
                                                 unless_photo=ask_if_photo)
    except CommandParseError as exc:
        await _tell(context, who, render_error(exc, who.lang))
        return
    except ImageError as exc:
        # The wait stays open: the user can send a better mask or /cancel.
        await _tell(context, who,
                    f"{render_error(exc, who.lang)}\n{text('mask_retry', who.lang)}")
        return
    if not is_mask:
        await _ask_what_it_is(context, who, mask, caption)
        return
    if not await services.conversations.end_mask_wait(who.chat_id, wait.user_id):
        return  # another copy of this mask (or a /cancel) ended the wait first
    await services.jobs.accept(_request(who, wait), parsed, wait.file_id,
                               mask_file_id=mask.file_id)


def _with_caption(wait: MaskWait, caption: str, bot_username: str) -> ParsedCommand:
    """The waiting request once the mask's caption adds to it (CommandParseError if bad)."""
    if not caption.strip():
        return wait.parsed
    extra = parse_command(f"/{wait.parsed.command.value} {caption}", bot_username)
    assert extra is not None
    return wait.with_caption(extra)


def _request(who: Requester, wait: MaskWait) -> Requester:
    """The job's requester: the person now, answering the /erase message."""
    return replace(who, message_id=wait.request_message_id)


async def _preview_if_painted(
    context: BotContext, who: Requester, wait: MaskWait, image: ImageRef, raw: bytes,
    parsed: ParsedCommand,
) -> bool:
    """If ``image`` (its bytes: ``raw``) is the photo painted over, show what will be
    repainted with [Run] [Redo] [Cancel] and return True; False when it is another picture.

    Raises ImageError when it is the photo with nothing painted on it.
    """
    messenger = context.services.messenger
    base_raw = await context.services.jobs.inputs.raw(wait.file_id)
    painted = await painted_mask_async(base_raw, raw)
    if painted is None:
        return False
    candidate = MaskCandidate(preview=secrets.token_hex(4), png=painted.png, parsed=parsed,
                              message_id=image.message_id)
    # Kept on the wait before the preview is shown: a press can only find what was stored.
    await context.services.conversations.start_mask_wait(replace(wait, candidate=candidate))
    buttons = tuple(
        Button(text(key, who.lang), MaskPreview(step, candidate.preview).encode())
        for step, key in ((PreviewStep.RUN, "btn_mask_run"), (PreviewStep.REDO, "btn_mask_redo"),
                          (PreviewStep.CANCEL, "btn_mask_cancel"))
    )
    percent = max(1, round(painted.coverage * 100))
    await messenger.send_images(
        who.chat_id,
        [OutgoingImage(await tinted_preview_async(base_raw, painted.png), "preview.jpg",
                       as_photo=True)],
        caption=text("mask_preview", who.lang, percent=percent), reply_to=image.message_id,
        keyboard=(buttons,),
    )
    return True


async def run_previewed(
    context: BotContext, who: Requester, wait: MaskWait, candidate: MaskCandidate
) -> None:
    """[Run] under a preview: the painted mask's job (the wait is already ended)."""
    await context.services.jobs.accept(_request(who, wait), candidate.parsed, wait.file_id,
                                       mask_png=candidate.png)


class MaskDesk:
    """What the Mini App's web server may do with an open /erase wait (bot/web): show its
    photo and run it with a drawn mask. Each call names the wait by its owner, chat and
    request message, which the page's signed link carries."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def _wait(self, user_id: int, chat_id: int, request_message_id: int) -> MaskWait | None:
        wait = await self._services.conversations.mask_wait(chat_id, user_id)
        if wait is None or wait.request_message_id != request_message_id:
            return None
        return wait

    async def photo(self, user_id: int, chat_id: int, request_message_id: int) -> bytes | None:
        wait = await self._wait(user_id, chat_id, request_message_id)
        return None if wait is None else await self._services.jobs.inputs.raw(wait.file_id)

    async def lang(self, user_id: int) -> Lang:
        user = await self._services.store.get_user(user_id)
        if user is None:
            return Lang.EN
        if user.language in ("zh", "en"):
            return Lang(user.language)
        return Lang.from_code(user.telegram_language)

    async def submit(
        self, user_id: int, chat_id: int, request_message_id: int, png: bytes
    ) -> str | None:
        """Run the waiting request with the drawn mask: None once accepted (the chat gets the
        status line, or the refusal), else what to tell the person on the page."""
        services = self._services
        lang = await self.lang(user_id)
        wait = await self._wait(user_id, chat_id, request_message_id)
        if wait is None:
            return text("miniapp_wait_gone", lang)
        try:
            base = await services.jobs.inputs.image(wait.file_id, wait.parsed.spec.model)
            await prepare_mask_async(png, (base.width, base.height))
        except ImageError as exc:
            return render_error(exc, lang)
        if not await services.conversations.end_mask_wait(chat_id, user_id):
            return text("miniapp_wait_gone", lang)  # a second press, or a /cancel, came first
        who = Requester(user_id=user_id, chat_id=chat_id, message_id=request_message_id,
                        lang=lang, is_admin=services.is_admin(user_id))
        try:
            result = await services.jobs.accept(who, wait.parsed, wait.file_id, mask_png=png)
        except BotError as exc:
            logger.warning("a drawn mask's request failed: %s", exc)
            return render_error(exc, lang)
        # A refusal (quota, spend cap) was said in the chat too.
        return result.message if isinstance(result, Refused) else None


async def _ask_what_it_is(
    context: BotContext, who: Requester, image: ImageRef, caption: str
) -> None:
    """The mask or a new photo? Two buttons, answered by :func:`handlers.callbacks.mask_choice`."""
    services = context.services
    keyboard: Keyboard = ((
        Button(text("btn_mask_use", who.lang), MaskChoice(MaskAnswer.USE).encode()),
        Button(text("btn_mask_new", who.lang), MaskChoice(MaskAnswer.NEW).encode()),
    ),)
    question_id = await services.messenger.send_text(
        who.chat_id, text("mask_question", who.lang), reply_to=who.message_id, keyboard=keyboard
    )
    await services.conversations.put_mask_question(question_id, MaskQuestion(
        user_id=who.user_id, chat_id=who.chat_id, file_id=image.file_id,
        message_id=image.message_id, caption=caption,
    ))


async def end_wait_for_command(update: Update, context: BotContext, message: Message) -> None:
    """Another command from someone waiting here for a mask: stop waiting, and say so."""
    user = update.effective_user
    assert user is not None
    conversations = context.services.conversations
    wait = await conversations.mask_wait(message.chat_id, user.id)
    if wait is None or not await conversations.end_mask_wait(message.chat_id, user.id):
        return
    lang = await language_of(update, context)
    await reply(message, context,
                text("mask_wait_ended", lang, command=wait.parsed.command.value))


async def still_waiting(update: Update, context: BotContext, message: Message) -> bool:
    """Words from someone waiting here for a mask: remind them (True), else False."""
    user = update.effective_user
    assert user is not None
    wait = await context.services.conversations.mask_wait(message.chat_id, user.id)
    if wait is None:
        return False
    lang = await language_of(update, context)
    await reply(message, context,
                text("mask_still_waiting", lang, command=wait.parsed.command.value))
    return True


async def on_group_text(update: Update, context: BotContext) -> None:
    """Group words to the bot (a reply to it, or naming it) while the sender owes a mask."""
    message = update.message
    assert message is not None and message.text is not None
    answered = message.reply_to_message
    to_bot = (answered is not None and answered.from_user is not None
              and answered.from_user.id == context.bot.id)
    if not to_bot and not _names(message.text, context.services.bot_username):
        return  # talk among people
    await still_waiting(update, context, message)


def _names(words: str, bot_username: str) -> bool:
    """Whether ``words`` mention ``@bot`` (any case)."""
    mention = rf"(?<!\w)@{re.escape(bot_username.lstrip('@'))}\b"
    return re.search(mention, words, re.IGNORECASE) is not None


async def _tell(context: BotContext, who: Requester, words: str) -> None:
    await context.services.messenger.send_text(who.chat_id, words, reply_to=who.message_id)
