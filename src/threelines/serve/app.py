"""The HTTP application: the API routes, the page, and the guards every request passes.

Guards, outermost first: the request log line (method, path, status, time,
project count; never a footprint), the body-size limit, the bearer token
(when one is set), CORS (only with ``--cors``). Errors are
``application/problem+json`` (type, title, detail, status); bad input is a
4xx, never a 500 or a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import time
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threelines import limits
from threelines.errors import ThreelinesError
from threelines.serve.problems import ServiceError

log = logging.getLogger("threelines.serve")

#: The environment variable that carries the configuration to each worker process (``--workers``).
CONFIG_ENV = "THREELINES_SERVE_CONFIG"
#: The environment variable of the bearer token.
TOKEN_ENV = "THREELINES_TOKEN"
PROBLEM = "application/problem+json"


@dataclass
class Config:
    """What ``threelines serve`` was started with (the token is read from the environment, never stored here)."""

    layers: str | None = None
    rules: str | None = None
    max_upload: int = limits.MAX_UPLOAD_BYTES
    time_limit_s: float = limits.REQUEST_TIME_LIMIT_S
    require_token: bool = False
    cors: str | None = None
    tiles: str | None = None
    tiles_crs: str = "wgs84"
    tiles_attribution: str | None = None


#: Loggers whose warnings quote a request's footprint (a repaired ring's coordinates, the CRS checks):
#: the service's log never holds a footprint, so only their errors are kept.
FOOTPRINT_LOGGERS = (
    "threelines.input.footprint_crs",
    "threelines.input.placing",
    "threelines.input.sources",
    "threelines.input.vector_files",
    "threelines.input.wkt",
    "threelines.input.crs",
    "threelines.input.corners",
)


def quiet_footprint_logs() -> None:
    """Keep what requests send out of the log (one line per request is logged instead)."""
    for name in FOOTPRINT_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    log.setLevel(logging.INFO)


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def factory() -> FastAPI:
    """The application of one worker process, configured from :data:`CONFIG_ENV` (for uvicorn's ``--workers``)."""
    raw = os.environ.get(CONFIG_ENV)
    if not logging.getLogger().handlers:  # a spawned worker: the CLI's log format, one line per request
        logging.basicConfig(format="threelines: %(levelname)s: %(message)s")
    quiet_footprint_logs()
    return create_app(Config(**json.loads(raw)) if raw else Config())


def create_app(config: Config, service=None) -> FastAPI:
    """Build the application: load the layers and rules once, then route.

    Parameters
    ----------
    config : Config
    service : threelines.serve.service.Service, optional
        An already loaded service (tests); loaded from ``config`` otherwise.
    """
    from threelines import __version__
    from threelines.serve.service import Service

    if service is None:
        service = Service(config.layers, config.rules, max_upload=config.max_upload)
    app = FastAPI(
        title="threelines",
        version=__version__,
        summary="Screen project footprints against China's 三线一单 zoning: pass, conditional or reject.",
    )
    app.state.service, app.state.config = service, config
    _errors(app)
    _routes(app, service, config)
    static = resources.files("threelines.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    # The innermost middleware: CORS and the guards wrap it as they wrap the routes.
    app.add_middleware(ScreenRoute, service=service, time_limit_s=config.time_limit_s)
    if config.cors:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=[config.cors],
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    token = os.environ.get(TOKEN_ENV) or None
    if config.require_token and not token:
        raise ThreelinesError(f"a token is required on this host: set {TOKEN_ENV}, or give --no-auth")
    app.add_middleware(GuardMiddleware, max_body=config.max_upload, token=token)
    return app


#: The values ``format`` and ``lang`` may take, and the longest ``crs``: the route's parameters and the lean route's.
_FORMATS = ("json", "html", "markdown", "geojson")
_LANGS = ("zh", "en")
_CRS_CHARS = 200


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
            answer = await _run_within(self.time_limit_s, self.service.screen_geojson, b"".join(chunks), **options)
            response = _response(scope, answer)
        except ThreelinesError as exc:  # as the exception handlers answer it; anything else is a bug, as on any route
            response = _refusal(exc)
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
    if options["fmt"] not in _FORMATS or options["lang"] not in (None, *_LANGS):
        return None
    if options["crs"] is not None and len(options["crs"]) > _CRS_CHARS:
        return None
    return options


class GuardMiddleware:
    """Log one line per request, bound the body, check the bearer token; raw ASGI, so nothing reads around it."""

    def __init__(self, app: ASGIApp, *, max_body: int, token: str | None):
        self.app, self.max_body, self.token = app, max_body, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Guard one request, then hand it on with its body read (and bounded)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status, state = time.perf_counter(), [0], scope.setdefault("state", {})

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                # The time spent in the service, for clients and benchmarks (RFC Server-Timing).
                took = f"app;dur={(time.perf_counter() - start) * 1000:.2f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", took)]}
            await send(message)

        try:
            refusal = self._refuse(scope)
            if refusal is not None:
                await refusal(scope, receive, sending)
                return
            body = await self._read(receive)
            if body is None:
                await _limit_response(self.max_body)(scope, receive, sending)
                return
            await self.app(scope, _replay(body, receive), sending)
        finally:
            log.info(
                "%s %s %d %.1fms projects=%d",
                scope["method"],
                scope["path"],
                status[0],
                (time.perf_counter() - start) * 1000,
                state.get("projects", 0),
            )

    def _refuse(self, scope: Scope):
        """A 401 for an API call without the token, a 413 for a declared body over the limit; else None."""
        headers = dict(scope.get("headers") or [])
        # A CORS preflight (OPTIONS) carries no token by design: CORS answers it, and it runs nothing.
        if self.token and scope["path"].startswith("/v1/") and scope["method"] != "OPTIONS":
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not secrets.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                response = problem(
                    401, "Unauthorized", f"send the service's token: Authorization: Bearer <{TOKEN_ENV}>"
                )
                response.headers["WWW-Authenticate"] = "Bearer"
                return response
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return _limit_response(self.max_body)
        return None

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None once it passes the limit (a chunked body has no length to check first)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _limit_response(max_body: int) -> JSONResponse:
    return problem(
        413,
        "Limit exceeded",
        f"the request body is more than the service's limit of {max_body:,} bytes "
        "(MAX_UPLOAD_BYTES, set with --max-upload); send a smaller file",
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body already read, as one message; then the client's own messages (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _refusal(exc: ThreelinesError) -> JSONResponse:
    """The problem+json answer to a request the service refuses (a 422 for the reader's own errors)."""
    if isinstance(exc, ServiceError):
        return problem(exc.status, exc.title, exc.detail, **exc.extra)
    return problem(422, "Unusable input", str(exc))


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        return _refusal(exc)

    @app.exception_handler(ThreelinesError)
    async def threelines_error(request: Request, exc: ThreelinesError):
        return _refusal(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return problem(422, "Invalid request", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return problem(exc.status_code, str(exc.detail), f"{request.method} {request.url.path}: {exc.detail}")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # a bug: logged with its traceback, answered plainly
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return problem(500, "Internal error", "the service failed on this request; its log has the details")


async def _run(request: Request, func, *args, **kwargs):
    """Run blocking work in a thread, within the request time limit (503 when it is passed)."""
    return await _run_within(request.app.state.config.time_limit_s, func, *args, **kwargs)


async def _run_within(limit: float, func, *args, **kwargs):
    """Run blocking work in a thread, within ``limit`` seconds (503 when it is passed)."""
    from starlette.concurrency import run_in_threadpool

    try:
        return await asyncio.wait_for(run_in_threadpool(func, *args, **kwargs), timeout=limit)
    except TimeoutError:
        raise ServiceError(
            503,
            "Time limit",
            f"the request took more than the service's limit of {limit:g} s "
            "(REQUEST_TIME_LIMIT_S); send fewer or simpler footprints",
        ) from None


def _answer(request: Request, answer) -> Response:
    return _response(request.scope, answer)


def _response(scope: Scope, answer) -> Response:
    """An answer of the service as its response; its project count kept for the log line."""
    scope.setdefault("state", {})["projects"] = answer.projects
    if answer.status != 200:  # some projects refused: the screened ones go with the problems, as the CLI does
        text = answer.body if isinstance(answer.body, str) else answer.body.decode()
        results = json.loads(text) if answer.media == "application/json" else text
        results = [results] if isinstance(results, dict) else results  # always the list of screened records
        return problem(
            answer.status,
            "Some projects not screened",
            "; ".join(answer.extra_problems),
            problems=answer.extra_problems,
            results=results,
        )
    return Response(answer.body, media_type=answer.media)


FORMAT = Query("json", pattern=f"^({'|'.join(_FORMATS)})$", description="The report: json, html, markdown, geojson.")
LANG = Query(
    None,
    pattern=f"^({'|'.join(_LANGS)})$",
    description="Language of rule texts and reports (default: the server's locale).",
)
CRS = Query(
    None, max_length=_CRS_CHARS, description="CRS of the footprint: EPSG code, gcj02 or bd09 (default: the GeoJSON's)."
)


def _routes(app: FastAPI, service, config: Config) -> None:
    from threelines.input.attributes import ATTRIBUTES

    @app.get("/healthz", summary="Version, jurisdiction, and the manifest's and rules' sha256.")
    def healthz() -> dict:
        return service.health()

    @app.post(
        "/v1/screen",
        summary="Screen one project or several: the same result as `screen --format json`.",
        description=(
            "Send a GeoJSON Feature or FeatureCollection (properties are the project attributes: industry, kind, "
            "width, emit_*, ...), or a multipart upload (`file` plus form fields for the attributes) of any format "
            "`screen` reads. One project answers one object, several an array. When some projects are refused, the "
            "answer is 422 problem+json with `problems` and the screened `results`."
        ),
        openapi_extra={
            "requestBody": {
                "content": {
                    "application/geo+json": {"schema": {"type": "object"}},
                    "application/json": {"schema": {"type": "object"}},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "file": {"type": "string", "format": "binary"},
                                **{name: {"type": "string"} for name in ATTRIBUTES},
                                "encoding": {"type": "string"},
                            },
                            "required": ["file"],
                        }
                    },
                }
            }
        },
    )
    async def screen(request: Request, format: str = FORMAT, lang: str | None = LANG, crs: str | None = CRS):
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            return await _screen_upload(request, format, lang, crs)
        if kind not in ("application/json", "application/geo+json", ""):
            raise ServiceError(
                415,
                "Unsupported media type",
                f"Content-Type {kind!r}: send application/geo+json "
                "(a GeoJSON Feature or FeatureCollection) or multipart/form-data (a file)",
            )
        body = await request.body()
        answer = await _run(request, service.screen_geojson, body, crs=crs, fmt=format, lang=lang)
        return _answer(request, answer)

    async def _screen_upload(request: Request, fmt: str, lang: str | None, crs: str | None):
        form = await request.form(max_files=1, max_fields=len(ATTRIBUTES) + 4, max_part_size=config.max_upload)
        upload = form.get("file")
        if not isinstance(upload, StarletteUpload):
            raise ServiceError(422, "No file", "multipart upload: send the footprint file in a part named 'file'")
        fields = {k: v for k, v in form.items() if k != "file"}
        unknown = sorted(set(fields) - set(ATTRIBUTES) - {"crs", "encoding"})
        if unknown:
            raise ServiceError(
                422,
                "Unknown field",
                f"form field {unknown[0]!r}: not a project attribute; use {', '.join(ATTRIBUTES)}, crs or encoding",
            )
        overrides = _overrides({k: v for k, v in fields.items() if k in ATTRIBUTES})
        data = await upload.read()
        crs = crs or (fields.get("crs") or None)
        answer = await _run(
            request,
            service.screen_upload,
            upload.filename,
            data,
            overrides=overrides,
            crs=crs,
            encoding=fields.get("encoding") or None,
            fmt=fmt,
            lang=lang,
        )
        return _answer(request, answer)

    @app.post(
        "/v1/siting",
        summary="Zones by outcome for a project profile, over a region or the whole jurisdiction, as GeoJSON.",
        description='Body: `{"profile": {"industry": "C2614", ...}, "region": GeoJSON (optional), "crs": "..."}`.',
        openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}},
    )
    async def siting(request: Request):
        body = await request.body()
        return _answer(request, await _run(request, service.siting, body))

    @app.get("/v1/layers", summary="The layers and their metadata.")
    def layers() -> list[dict]:
        return service.layers()

    @app.get("/v1/layers/{name}", summary="A layer's features as GeoJSON for display (EPSG:4490).")
    async def layer(
        request: Request,
        name: str,
        zoom: Annotated[float | None, Query(description="Simplify to half a pixel at this web-map zoom.")] = None,
        tolerance: Annotated[float | None, Query(description="Simplify by this many degrees.")] = None,
        bbox: Annotated[str | None, Query(max_length=200, description="west,south,east,north in degrees.")] = None,
        crs: Annotated[
            str | None, Query(max_length=10, description="gcj02 or bd09: shift for such a base map.")
        ] = None,
    ):
        gzipped = "gzip" in request.headers.get("accept-encoding", "")
        shown = await _run(
            request, service.layer_shown, name, compressed=gzipped, zoom=zoom, tolerance=tolerance, bbox=bbox, crs=crs
        )
        # Compressed: the page's layers are most of what it loads (and its own are compressed once, and kept).
        if gzipped:
            headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
            return Response(shown.gzipped, media_type="application/geo+json", headers=headers)
        return Response(shown.text, media_type="application/geo+json", headers={"Vary": "Accept-Encoding"})

    @app.get("/v1/industries", summary="Search GB/T 4754-2017 codes by code or words of their names.")
    def industries(
        q: Annotated[str | None, Query(max_length=limits.MAX_QUERY_CHARS)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> list[dict]:
        return service.industries(q, limit)

    extent = [round(float(v), 6) for v in service.manifest.extent]
    tiles = {"url": config.tiles, "crs": config.tiles_crs, "attribution": config.tiles_attribution}
    # The same for every request: made once.
    page_settings = orjson.dumps(
        {**service.health(), "extent": extent, "tiles": tiles if config.tiles else None, "layers": service.layers()}
    )

    @app.get(
        "/v1/config",
        summary="What the page needs: jurisdiction, extent, base-map tiles.",
        response_class=Response,
        responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
    )
    def page_config() -> Response:
        return Response(page_settings, media_type="application/json")

    @app.get("/fonts/cjk.otf", include_in_schema=False)
    def cjk_font() -> Response:
        # The page's Chinese glyphs where the browser's machine has no CJK font (offline: the package's own).
        from fastapi.responses import FileResponse

        from threelines.report.map import cjk_font_path

        return FileResponse(cjk_font_path(), media_type="font/otf", headers={"Cache-Control": "max-age=86400"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    html = _page_html(service)

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return Response(html, media_type="text/html; charset=utf-8")


def _page_html(service) -> str:
    """The page, with its first API calls (settings, each layer at the page's zoom) asked for in its head.

    Preloaded, they are fetched with the scripts instead of after them; the
    page's own fetch() calls then take the answers already there.
    """
    from threelines.serve.display import PAGE_ZOOM

    html = (resources.files("threelines.serve") / "static" / "index.html").read_text(encoding="utf-8")
    # Quoted as the page's encodeURIComponent() quotes, so that its requests are the same URLs.
    names = [quote(name, safe="!*'()") for name in service.display]
    urls = ["/v1/config", *(f"/v1/layers/{name}?zoom={PAGE_ZOOM:g}" for name in names)]
    links = "".join(f'<link rel="preload" href="{url}" as="fetch" crossorigin="anonymous">\n' for url in urls)
    return html.replace("</head>", links + "</head>", 1)


def _overrides(fields: dict[str, str]) -> dict[str, Any]:
    """Form fields (text) as the attribute values ``screen``'s options would give; blank fields are not given."""
    from threelines.input.attributes import QUANTITIES

    out: dict[str, Any] = {}
    for key, value in fields.items():
        text = str(value).strip()
        if not text:
            continue
        if key in (*QUANTITIES, "width", "radius"):
            try:
                out[key] = float(text)
            except ValueError:
                raise ServiceError(422, "Invalid attribute", f"form field {key!r}: {text!r} is not a number") from None
        else:
            out[key] = text
    return out


def config_dict(config: Config) -> str:
    """The configuration as JSON, for :data:`CONFIG_ENV`."""
    return json.dumps(asdict(config))
