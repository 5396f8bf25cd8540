"""The bot's own web server (aiohttp): the Mini App that draws /erase masks."""

from bot.web.desk import DrawingDesk
from bot.web.initdata import WebAppUser, verify_init_data
from bot.web.server import WebServer

__all__ = ["DrawingDesk", "WebAppUser", "WebServer", "verify_init_data"]
