"""The HTTP application: the API routes, the page, and the guards every request passes.

Guards, outermost first (:mod:`threelines.serve.guards`): the request log
line (method, path, status, time, project count; never a footprint), the
body-size limit, the bearer token (when one is set), CORS (only with
``--cors``). Errors are ``application/problem+json`` (type, title, detail,
status; see :mod:`threelines.serve.answers`); bad input is a 4xx, never a
500 or a traceback. The common screening request is answered within the
guards without FastAPI's routing (:mod:`threelines.serve.screen_route`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote

import orjson
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.exceptions import HTTPException as StarletteHTTPException

from threelines import limits
from threelines.errors import ThreelinesError
from threelines.serve.answers import answer_response, problem, refusal, run_within
from threelines.serve.guards import TOKEN_ENV, GuardMiddleware
from threelines.serve.problems import ServiceError
from threelines.serve.screen_route import CRS_CHARS, FORMATS, LANGS, ScreenRoute

log = logging.getLogger("threelines.serve")

#: The environment variable that carries the configuration to each worker process (``--workers``).
CONFIG_ENV = "THREELINES_SERVE_CONFIG"


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


def _errors(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError):
        return refusal(exc)

    @app.exception_handler(ThreelinesError)
    async def threelines_error(request: Request, exc: ThreelinesError):
        return refusal(exc)

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
    return await run_within(request.app.state.config.time_limit_s, func, *args, **kwargs)


def _answer(request: Request, answer) -> Response:
    return answer_response(request.scope, answer)


FORMAT = Query("json", pattern=f"^({'|'.join(FORMATS)})$", description="The report: json, html, markdown, geojson.")
LANG = Query(
    None,
    pattern=f"^({'|'.join(LANGS)})$",
    description="Language of rule texts and reports (default: the server's locale).",
)
CRS = Query(
    None, max_length=CRS_CHARS, description="CRS of the footprint: EPSG code, gcj02 or bd09 (default: the GeoJSON's)."
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
