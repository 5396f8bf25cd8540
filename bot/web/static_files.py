"""A package's ``static/`` folder: read once at start, served by name (the Mini App's page and
the playground's page share it)."""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources

from aiohttp import web


class StaticFiles:
    """The files of ``package``'s ``static/``; ``served`` names those sent to browsers as they
    are, with their content types (the rest, templates, are read with :meth:`text`)."""

    def __init__(self, package: str, served: Mapping[str, str]) -> None:
        self._package = package
        self._types = dict(served)
        self._served = {name: self.text(name) for name in self._types}

    def text(self, name: str) -> str:
        return (resources.files(self._package) / "static" / name).read_text(encoding="utf-8")

    async def serve(self, request: web.Request) -> web.Response:
        """The route handler of ``…/static/{name}``: 404 for a name not served."""
        name = request.match_info["name"]
        if name not in self._served:
            raise web.HTTPNotFound()
        return web.Response(text=self._served[name], content_type=self._types[name],
                            headers={"Cache-Control": "no-cache"})
