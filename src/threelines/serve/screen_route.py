"""The common screening request (``POST /v1/screen``, a GeoJSON body) answered without FastAPI's routing."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from threelines.errors import ThreelinesError
from threelines.serve.answers import answer_response, refusal, run_within

#: The values ``format`` and ``lang`` may take, and the longest ``crs``: the route's parameters and the lean route's.
FORMATS = ("json", "html", "markdown", "geojson")
LANGS = ("zh", "en")
CRS_CHARS = 200


class ScreenRoute:
    """``POST /v1/screen`` with a GeoJSON body and valid parameters, answered without FastAPI's routing.

    FastAPI's dispatch (routing, parameter models, exception middleware)
    costs about as much CPU per request as reading the request's footprint.
    This answers the common request as the route would, within the same
    guards (it is the innermost middleware); anything else (an upload, a
    parameter FastAPI would refuse, another route) goes on to FastAPI, whose
    route stays the one the OpenAPI document describes.
    """

    def __init__(self, app: ASGIApp, *, service, time_limit_s: float):
        self.app, self.service, self.time_limit_s = app, service, time_limit_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Screen a plain GeoJSON request here; hand any other on."""
        options = _screen_options(scope)
        if options is None:
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:  # the guard has read the body whole: one message
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        try:
            answer = await run_within(self.time_limit_s, self.service.screen_geojson, b"".join(chunks), **options)
            response = answer_response(scope, answer)
        except ThreelinesError as exc:  # as the exception handlers answer it; anything else is a bug, as on any route
            response = refusal(exc)
        await response(scope, receive, send)


def _screen_options(scope: Scope) -> dict[str, Any] | None:
    """The options of a GeoJSON screening request that the route would accept as they are; None for any other."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/v1/screen":
        return None
    kind = next((v for k, v in scope["headers"] if k == b"content-type"), b"").decode("latin-1")
    if kind.split(";")[0].strip().lower() not in ("application/json", "application/geo+json", ""):
        return None
    options: dict[str, Any] = {"fmt": "json", "lang": None, "crs": None}
    given = set()
    for key, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        name = "fmt" if key == "format" else key
        if name not in options:
            continue
        if name in given:  # given twice: FastAPI decides which counts
            return None
        given.add(name)
        options[name] = value
    if options["fmt"] not in FORMATS or options["lang"] not in (None, *LANGS):
        return None
    if options["crs"] is not None and len(options["crs"]) > CRS_CHARS:
        return None
    return options
