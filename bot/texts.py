"""Every text a user sees, Chinese and English side by side, in one catalogue.

``text(key, lang, **params)`` renders one entry with ``str.format``; values that came from users
must be escaped by the caller (``html.escape``) before they are passed in, since messages are
sent with HTML parse mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Lang(StrEnum):
    ZH = "zh"
    EN = "en"

    @classmethod
    def from_code(cls, code: str | None) -> Lang:
        """Telegram ``language_code`` (``zh-hans``, ``en-US``, ...) to a supported language."""
        if code and code.lower().startswith("zh"):
            return cls.ZH
        return cls.EN


@dataclass(frozen=True)
class Text:
    zh: str
    en: str


CATALOGUE: dict[str, Text] = {
    # --- command parsing (bot/commands.py) ---------------------------------------------------
    # --- images (bot/images.py) ----------------------------------------------------------------
    # --- bot, pipeline and handlers --------------------------------------------------------------
}


def text(key: str, lang: Lang | str, /, **params: object) -> str:
    """Render catalogue entry ``key`` in ``lang``."""
    entry = CATALOGUE[key]
    template = entry.zh if Lang(lang) is Lang.ZH else entry.en
    return template.format(**params) if params else template
