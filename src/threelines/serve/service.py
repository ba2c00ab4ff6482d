"""The service's state and work: layers and rules loaded once, screened and zoned through the CLI's code paths.

Everything here is plain Python (no web framework), so that it can be
tested and timed on its own. The HTTP layer (:mod:`threelines.serve.app`)
turns :class:`ServiceError` into problem+json answers.

What the service holds in memory: every vector layer the rules read (and
the unit layer), read whole and indexed once (as a batch's workers do),
the provenance block of the manifest and rules (hashed once), and each
vector layer in EPSG:4490 for display.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tempfile
import threading
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import orjson
import shapely

from threelines import limits
from threelines.errors import ThreelinesError, feature_at

#: Suffixes an upload may have (what ``screen`` reads); a name is kept only with one of them.
UPLOAD_SUFFIXES = (
    ".zip",
    ".kmz",
    ".kml",
    ".dxf",
    ".gpkg",
    ".geojson",
    ".json",
    ".fgb",
    ".gml",
    ".parquet",
    ".geoparquet",
    ".csv",
    ".xlsx",
    ".xls",
)
#: Formats of a screening's answer besides JSON, with their media types.
REPORT_MEDIA = {
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
    "geojson": "application/geo+json",
}
#: Zip local-file magic: a .kmz, .zip, .xlsx (itself a zip) are checked as archives.
_ZIP_MAGIC = b"PK\x03\x04"


class ServiceError(ThreelinesError, ValueError):
    """A request the service refuses: the HTTP status and one line saying why and what to do.

    Attributes
    ----------
    status : int
        413 for a stated limit exceeded, 422 for content that cannot be used,
        404 for a name that does not exist.
    title : str
        A short, fixed summary of the kind of problem.
    """

    def __init__(self, status: int, title: str, detail: str, **extra: Any):
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def limit_error(what: str, value: float, limit: float, name: str, fix: str) -> ServiceError:
    """A 413 naming the limit, its value and the setting or fix."""
    return ServiceError(
        413, "Limit exceeded", f"{what}: {value:,.0f} is more than the service's limit of {limit:,.0f} ({name}); {fix}"
    )


#: Longest a pass of the engine waits for GeoJSON requests still being read, to screen them with it
#: (reading one takes a few milliseconds; a pass costs about as much for four projects as for one).
COALESCE_WAIT_S = 0.02
#: The web-map zoom the page asks the layers at (kept simplified and compressed from the start).
PAGE_ZOOM = 12.0


@dataclass(frozen=True)
class Shown:
    """A layer's GeoJSON for display, as sent: plain and gzip-compressed (None: not asked for)."""

    text: bytes
    gzipped: bytes | None


@dataclass
class Answer:
    """A response body: its media type, text, how many projects it concerns, and its HTTP status."""

    media: str
    body: str | bytes
    projects: int = 0
    status: int = 200
    extra_problems: list[str] = field(default_factory=list)


class Service:
    """The manifest and rules of one jurisdiction, held in memory, and what the API does with them.

    Parameters
    ----------
    layers, rules : str or Path, optional
        The manifest and rule file; the bundled sample when omitted.
    max_upload : int
        Largest request body, bytes.
    """

    def __init__(
        self,
        layers: str | Path | None = None,
        rules: str | Path | None = None,
        *,
        max_upload: int = limits.MAX_UPLOAD_BYTES,
    ):
        from threelines.cli.options import load_inputs
        from threelines.report.i18n import default_language
        from threelines.report.provenance import dataset_sha256, setup_provenance

        self.manifest, self.rules = load_inputs(layers, rules)
        self.max_upload = int(max_upload)
        self.default_lang = default_language()
        self.setup = setup_provenance(self.manifest, self.rules)
        self.manifest_sha256 = self.setup["manifest"]["sha256"]
        self.rules_sha256 = dataset_sha256(self.rules.path)
        self.layer_cache = self._read_layers()
        self.display = _display_layers(self.manifest)
        # The rule engine's caches and matplotlib (HTML reports) are not made for threads: one at a time each.
        self.lock = threading.Lock()
        self.report_lock = threading.Lock()
        self.coalescer = Coalescer(self._screen_together, self.lock, wait_s=COALESCE_WAIT_S)
        self._siting_cache: dict[str, dict] = {}
        self._shown: dict[tuple, Shown] = {}
        self.shown_lock = threading.Lock()
        for name in self.display:  # what the page asks for first, ready before it does
            self.layer_shown(name, zoom=PAGE_ZOOM)

    def _read_layers(self) -> dict:
        """Every vector layer screening reads, whole, in the working CRS, with its index built."""
        from threelines.layers.cache import read_layer_cached

        unit = self.manifest.unit_layer.name if self.manifest.unit_layer else None
        names = dict.fromkeys([*self.rules.layers(), *([unit] if unit else [])])
        cache = {}
        for name in names:
            spec = self.manifest.layers[name]
            if spec.role != "raster":
                cache[name] = read_layer_cached(spec, self.manifest.working_crs, None)
                _ = cache[name].tree  # built now, not by the first request
        return cache

    # -- health and metadata ---------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Version, jurisdiction, and the sha256 of the manifest and the rules."""
        from threelines import __version__

        return {
            "status": "ok",
            "version": __version__,
            "jurisdiction": self.manifest.name,
            "manifest_sha256": self.manifest_sha256,
            "rules_sha256": self.rules_sha256,
        }

    def layers(self) -> list[dict[str, Any]]:
        """Each layer's name, role, title, feature count, lon/lat extent and fields (never its path)."""
        out = []
        for name, spec in self.manifest.layers.items():
            shown = self.display.get(name)
            out.append(
                {
                    "name": name,
                    "role": spec.role,
                    "features": None if shown is None else len(shown["geometry"]),
                    "bounds": None
                    if shown is None
                    else [round(float(v), 6) for v in shapely.total_bounds(shown["geometry"])],
                    "fields": dict(spec.fields),
                    "used_by_rules": name in self.rules.layers(),
                }
            )
        return out

    def layer_shown(self, name: str, *, compressed: bool = True, **options) -> Shown:
        """:meth:`layer_features` as UTF-8 bytes, and gzip-compressed when ``compressed``.

        The page's own requests (a layer at :data:`PAGE_ZOOM`, whole, maybe
        shifted for a GCJ-02 or BD-09 base map) are kept: at most three per
        layer. Any other is made for its request.
        """
        crs = options.get("crs")
        page = options.get("zoom") == PAGE_ZOOM and options.get("bbox") is None and options.get("tolerance") is None
        key = (name, None if crs is None else str(crs).strip().lower())
        shown = self._shown.get(key) if page else None
        if shown is None:
            text = self.layer_features(name, **options)["text"].encode()  # refuses bad options before any is kept
            if page:
                shown = Shown(text, gzip.compress(text, compresslevel=6, mtime=0))
                with self.shown_lock:
                    self._shown[key] = shown
            else:
                shown = Shown(text, gzip.compress(text, compresslevel=1, mtime=0) if compressed else None)
        return shown

    def layer_features(
        self,
        name: str,
        *,
        zoom: float | None = None,
        tolerance: float | None = None,
        bbox: str | None = None,
        crs: str | None = None,
    ) -> dict[str, Any]:
        """One layer's features as GeoJSON for display: simplified, clipped to ``bbox``, in EPSG:4490.

        ``zoom`` (web-map zoom level) sets the simplification to half a pixel;
        ``tolerance`` (degrees) sets it directly. ``crs=gcj02`` shifts the
        coordinates for a base map drawn in GCJ-02 (display only).
        """
        if name not in self.manifest.layers:
            raise ServiceError(404, "No such layer", f"layer {name!r}: not in the manifest; GET /v1/layers lists them")
        shown = self.display.get(name)
        if shown is None:
            raise ServiceError(422, "Not a vector layer", f"layer {name!r}: is a raster; only vector layers are served")
        geoms = shown["geometry"]
        keep = np.arange(len(geoms))
        if bbox is not None:
            box = _parse_bbox(bbox)
            keep = np.flatnonzero(shapely.intersects(geoms, shapely.box(*box)))
            geoms = shapely.clip_by_rect(geoms[keep], *box)
        if len(keep) > limits.MAX_LAYER_FEATURES_SHOWN:
            raise limit_error(
                f"layer {name!r}",
                len(keep),
                limits.MAX_LAYER_FEATURES_SHOWN,
                "MAX_LAYER_FEATURES_SHOWN",
                "give a smaller bbox",
            )
        step = _tolerance(zoom, tolerance)
        if step > 0:
            geoms = shapely.simplify(geoms, step, preserve_topology=True)
        if crs is not None:
            geoms = _to_web_offset(geoms, crs)
        props = [shown["properties"][i] for i in keep.tolist()]
        texts = shapely.to_geojson(shapely.set_precision(geoms, 1e-6))
        features = [
            f'{{"type":"Feature","properties":{orjson.dumps(p).decode()},"geometry":{t}}}'
            for p, t in zip(props, texts, strict=True)
            if t is not None and '"coordinates":[]' not in t
        ]
        return {"text": '{"type":"FeatureCollection","features":[' + ",".join(features) + "]}", "count": len(features)}

    def industries(self, query: str | None, limit: int = 50) -> list[dict[str, str | None]]:
        """GB/T 4754-2017 codes by code, Chinese or English words: see :func:`threelines.industry.search`."""
        from threelines.industry import search

        text = (query or "").strip()
        if len(text) > limits.MAX_QUERY_CHARS:
            raise limit_error("q", len(text), limits.MAX_QUERY_CHARS, "MAX_QUERY_CHARS", "search with fewer words")
        return search(text, max(1, min(limit, 200)))

    # -- screening --------------------------------------------------------------------------------

    def screen_geojson(self, body: bytes, *, crs: str | None, fmt: str, lang: str | None) -> Answer:
        """Screen the Feature or FeatureCollection of a request body (properties are project attributes)."""
        with self.coalescer.arriving():
            try:
                projects = geojson_projects(
                    body, "request body", self.manifest.working_crs, crs=crs, line_widths=self.manifest.line_widths
                )
            except ServiceError:
                raise
            except ThreelinesError as exc:
                raise ServiceError(422, "Unusable footprint", str(exc)) from None
            given = {"path": None, "sha256": hashlib.sha256(body).hexdigest(), "upload": "request body (GeoJSON)"}
            return self._screen_projects(projects, options={"crs": crs}, given=given, fmt=fmt, lang=lang)

    def screen_upload(
        self,
        filename: str | None,
        data: bytes,
        *,
        overrides: dict[str, Any],
        crs: str | None,
        encoding: str | None,
        fmt: str,
        lang: str | None,
    ) -> Answer:
        """Screen an uploaded file of any format ``screen`` reads, with attributes from form fields."""
        from threelines.input.footprint import read_projects

        name = safe_upload_name(filename)
        if data[:4] == _ZIP_MAGIC:
            check_archive(data, name)
        with tempfile.TemporaryDirectory(prefix="threelines-upload-") as folder:
            path = Path(folder) / name
            path.write_bytes(data)
            try:
                projects = read_projects(
                    path,
                    self.manifest.working_crs,
                    crs=crs,
                    encoding=encoding,
                    overrides=overrides,
                    line_widths=self.manifest.line_widths,
                )
            except ThreelinesError as exc:
                raise ServiceError(422, "Unusable footprint", _hide(str(exc), folder)) from None
            projects.problems = [_hide(str(p), folder) for p in projects.problems]
        given = {"path": None, "sha256": hashlib.sha256(data).hexdigest(), "upload": name}
        options = {"crs": crs, "encoding": encoding, **overrides}
        return self._screen_projects(projects, options=options, given=given, fmt=fmt, lang=lang)

    def _screen_projects(self, projects, *, options, given, fmt, lang) -> Answer:
        """The screening itself (the CLI's engine, layers from memory), and its report."""
        from threelines.engine.screen import Screening
        from threelines.engine.verdict import Verdict

        total = len(projects) + len(projects.problems)
        if total > limits.MAX_PROJECTS_PER_REQUEST:
            raise limit_error(
                "projects in the upload",
                total,
                limits.MAX_PROJECTS_PER_REQUEST,
                "MAX_PROJECTS_PER_REQUEST",
                "split them over several requests, or use `threelines batch`",
            )
        _check_vertices(projects.geometry, [f"project {a['id']!r}" for a in projects.attrs])
        lang = lang or self.default_lang
        results = self.coalescer.screen(projects)
        kept = [i for i, r in enumerate(results) if isinstance(r, Verdict)]
        screening = Screening(
            verdicts=[results[i] for i in kept],
            problems=list(projects.problems) + [r for r in results if isinstance(r, str)],
            footprints=[projects.geometry[i] for i in kept],
            crs=projects.crs,
        )
        problems = [str(p) for p in screening.problems]
        if not screening.verdicts:
            raise ServiceError(
                422,
                "Nothing screened",
                problems[0] if len(problems) == 1 else f"no project could be screened ({len(problems)} problems)",
                problems=problems,
            )
        block = self._provenance(given, options, len(screening.verdicts))
        answer = self._report(screening, fmt, lang, block)
        if problems:  # as the CLI: the screened projects are answered, the refused ones named, and it is an error
            answer.status, answer.extra_problems = 422, problems
        return answer

    def _provenance(self, given: dict, options: dict, count: int) -> dict[str, Any]:
        when = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return {
            **self.setup,
            "options": {k: v for k, v in options.items() if v is not None},
            "screened_at": when,
            "input": given,
            "project_count": count,
        }

    def _report(self, screening, fmt: str, lang: str, block: dict) -> Answer:
        """The screening as the CLI writes it to a .json file (one object, or an array), or another report."""
        from threelines.report.formats import write_report
        from threelines.report.json import format_json

        count = len(screening.verdicts)
        if fmt == "json":
            text = format_json(screening.verdicts, provenance=block, lang=lang, array=count > 1)
        else:
            with self.report_lock:
                text = write_report(screening, self.manifest, fmt, lang=lang, provenance=block)
        return Answer(REPORT_MEDIA[fmt], text, projects=count)

    def _screen_together(self, projects) -> list:
        from threelines.engine.screen import screen_checked

        return screen_checked(projects, self.manifest, self.rules, layer_cache=self.layer_cache)

    # -- siting -----------------------------------------------------------------------------------

    def siting(self, body: bytes) -> Answer:
        """Zones by outcome for a project profile, over a region (GeoJSON) or the whole jurisdiction.

        The body is ``{"profile": {...attributes}, "region": GeoJSON (optional), "crs": "..." (optional)}``.
        Answers are kept per profile and region: zoning the whole county takes seconds.
        """
        from threelines.siting.zones import siting

        doc = _json(body, "request body")
        if not isinstance(doc, dict):
            raise ServiceError(422, "Invalid siting request", 'the body must be a JSON object {"profile": {...}}')
        profile = _profile(doc.get("profile") or {})
        key = hashlib.sha256(
            orjson.dumps([profile, doc.get("region"), doc.get("crs")], option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
        if key in self._siting_cache:
            return Answer("application/geo+json", self._siting_cache[key]["text"], projects=1)
        region = self._region(doc.get("region"), doc.get("crs"))
        with self.lock:
            try:
                result = siting(self.manifest, self.rules, profile, region)
            except ThreelinesError as exc:
                raise ServiceError(422, "Siting refused", str(exc)) from None
        text = _zones_geojson(result, self.rules, profile)
        if len(self._siting_cache) >= 64:  # bounded: the oldest answer goes
            self._siting_cache.pop(next(iter(self._siting_cache)))
        self._siting_cache[key] = {"text": text}
        return Answer("application/geo+json", text, projects=1)

    def _region(self, region, crs):
        """The region to zone, in the working CRS (None: the whole jurisdiction)."""
        if region is None:
            return None
        try:
            projects = geojson_projects(orjson.dumps(region), "region", self.manifest.working_crs, crs=crs)
        except ServiceError:
            raise
        except ThreelinesError as exc:
            raise ServiceError(422, "Unusable region", str(exc)) from None
        areas = projects.geometry[projects.area_m2 > 0]
        if not len(areas):
            raise ServiceError(422, "Unusable region", "region: holds no polygon; the region to zone must be an area")
        return shapely.union_all(areas)


class Coalescer:
    """Screen the projects of requests that arrive together in one pass of the engine.

    One pass over several projects costs little more than over one (the
    engine works over arrays), so while one request's projects are screened
    the requests that arrive queue up, and the next of them screens them all
    at once. Each project's answer does not depend on the others screened
    with it (as in a batch's chunks); only projects read with the same
    label (which messages name) go together.

    Requests still being read (:meth:`arriving`) are waited for, up to
    ``wait_s``: reading them takes the CPU the waiting request does not use,
    and one pass for them all costs far less than one pass each.

    Parameters
    ----------
    run : callable
        Screens a :class:`~threelines.input.footprint.Projects`; returns one verdict or message per project.
    lock : threading.Lock
        Held while the engine runs.
    wait_s : float
        Longest wait for requests being read before a pass starts.
    """

    def __init__(self, run, lock: threading.Lock, wait_s: float = 0.0):
        self._run, self._lock, self._wait_s = run, lock, wait_s
        self._mutex = threading.Condition()
        self._pending: list[_Pending] = []
        self._reading = 0  # requests in arriving() that have not reached screen() yet
        self._here = threading.local()  # each request is read and screened in one thread

    @contextmanager
    def arriving(self):
        """Count this thread's request as being read until it reaches :meth:`screen` (or fails before)."""
        with self._mutex:
            self._reading += 1
            self._here.reading = True
        try:
            yield
        finally:
            with self._mutex:
                self._read()

    def _read(self) -> None:
        """Count this thread's request as read (the mutex held)."""
        if getattr(self._here, "reading", False):
            self._here.reading = False
            self._reading -= 1
            self._mutex.notify_all()

    def screen(self, projects) -> list:
        """The engine's answers for these projects (screened with any others that wait)."""
        item = _Pending(projects)
        with self._mutex:
            self._pending.append(item)
            self._read()
        with self._lock:
            if not item.done:  # not yet answered by the request that held the engine before
                with self._mutex:
                    self._mutex.wait_for(lambda: self._reading == 0, timeout=self._wait_s)
                    batch, self._pending = self._pending, []
                self._screen_batch(batch)
        if item.error is not None:
            raise item.error
        return item.results

    def _screen_batch(self, batch: list[_Pending]) -> None:
        from threelines.input.footprint import Projects

        groups: dict[str, list[_Pending]] = {}
        for item in batch:
            groups.setdefault(item.projects.source, []).append(item)
        for source, items in groups.items():
            try:
                together = Projects(
                    source=source,
                    attrs=[a for i in items for a in i.projects.attrs],
                    geometry=np.concatenate([i.projects.geometry for i in items]),
                    area_m2=np.concatenate([i.projects.area_m2 for i in items]),
                    plane_area_m2=np.concatenate([_plane_areas(i.projects) for i in items]),
                )
                results = self._run(together) if len(together) else []
                start = 0
                for item in items:
                    item.results = results[start : start + len(item.projects)]
                    start += len(item.projects)
            except Exception:  # one request must not fail the others: each alone, to find which
                for item in items:
                    self._screen_alone(item)
            finally:
                for item in items:
                    item.done = True

    def _screen_alone(self, item: _Pending) -> None:
        try:
            item.results = self._run(item.projects) if len(item.projects) else []
        except Exception as exc:  # handed to the waiting request, raised there
            item.error = exc


def _plane_areas(projects) -> np.ndarray:
    """The projects' areas in the plane of their projected CRS (NaN: came in longitude/latitude)."""
    if projects.plane_area_m2 is None:
        return np.full(len(projects), np.nan)
    return np.asarray(projects.plane_area_m2, dtype=float)


@dataclass
class _Pending:
    projects: Any
    results: list = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False


# -- helpers ------------------------------------------------------------------------------------------


def _json(body: bytes, label: str):
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ServiceError(
            422, "Invalid JSON", f"{label}: is not JSON ({exc}); send a GeoJSON Feature or FeatureCollection"
        ) from None


def geojson_projects(body: bytes, label: str, working_crs, *, crs=None, line_widths=None):
    """Projects in the working CRS from a GeoJSON Feature, FeatureCollection or bare geometry.

    The properties are the projects' attributes, checked as ``screen``
    checks a file's (:func:`~threelines.input.footprint.projects_from_arrays`).
    A body that is no usable GeoJSON raises :class:`ServiceError`; a file-level
    problem (no CRS fits) raises the reader's error, the projects' own problems
    are in their ``problems``.
    """
    from threelines.input.attributes import attribute_names, plain_cells
    from threelines.input.footprint import projects_from_arrays

    doc, geoms, columns = geojson_features(body, label)
    cells = {name: plain_cells(columns[column]) for name, column in attribute_names(columns).items()}
    return projects_from_arrays(
        geoms, _declared_crs(doc, label), cells, working_crs, label=label, crs=crs, line_widths=line_widths
    )


def geojson_features(body: bytes, label: str) -> tuple[dict, np.ndarray, dict[str, list]]:
    """The document, geometries and property columns of a GeoJSON Feature, FeatureCollection or bare geometry.

    RFC 7946 GeoJSON is WGS84 lon/lat; an old-style ``crs`` member (as GDAL
    writes, e.g. ``urn:ogc:def:crs:EPSG::4490``) is honoured, as ``screen``
    does for a file (see :func:`_declared_crs`). Each property is a column
    (in the order first seen) of one value per feature, None where a feature
    lacks it; nested values are JSON text. A property named ``geometry`` is
    left out: the footprint takes its place.
    """
    doc = _json(body, label)
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise ServiceError(422, "Invalid GeoJSON", f"{label}: a FeatureCollection needs a 'features' array")
    elif kind == "Feature":
        features = [doc]
    elif kind in ("Polygon", "MultiPolygon", "LineString", "MultiLineString", "Point", "MultiPoint"):
        features = [{"type": "Feature", "properties": {}, "geometry": doc}]
    else:
        raise ServiceError(
            422,
            "Invalid GeoJSON",
            f"{label}: is not a GeoJSON Feature or FeatureCollection "
            f'(its type is {kind!r}); send {{"type": "Feature", "geometry": ..., "properties": ...}}',
        )
    if not features:
        raise ServiceError(422, "Invalid GeoJSON", f"{label}: has no features; send at least one footprint")
    if len(features) > limits.MAX_PROJECTS_PER_REQUEST:
        raise limit_error(
            f"{label}: features",
            len(features),
            limits.MAX_PROJECTS_PER_REQUEST,
            "MAX_PROJECTS_PER_REQUEST",
            "split them over several requests, or use `threelines batch`",
        )
    columns: dict[str, list] = {}
    texts, names = [], []
    for n, feature in enumerate(features):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise ServiceError(422, "Invalid GeoJSON", f"{label}: {feature_at(n)}: is not a GeoJSON Feature object")
        props = feature.get("properties") or {}
        if not isinstance(props, dict):
            raise ServiceError(422, "Invalid GeoJSON", f"{label}: {feature_at(n)}: 'properties' must be an object")
        # Nested values are no attribute: as text, they are refused by the attribute's own check.
        row = {k: orjson.dumps(v).decode() if isinstance(v, dict | list) else v for k, v in props.items()}
        for key, value in row.items():
            columns.setdefault(key, [None] * len(features))[n] = value
        names.append(f"{label}: {feature_at(n)}" if row.get("id") is None else f"{label}: project {str(row['id'])!r}")
        geometry = feature.get("geometry")
        texts.append(None if geometry is None else orjson.dumps(geometry))
    columns.pop("geometry", None)
    geoms = np.empty(len(texts), dtype=object)
    present = [i for i, t in enumerate(texts) if t is not None]
    if present:
        parsed = shapely.from_geojson(np.array([texts[i] for i in present], dtype=object), on_invalid="ignore")
        bad = [present[k] for k in np.flatnonzero(shapely.is_missing(parsed)).tolist()]
        if bad:
            raise ServiceError(
                422,
                "Invalid GeoJSON",
                f"{label}: {feature_at(bad[0])}: its geometry is not valid "
                "GeoJSON (type and coordinates); fix it or leave the feature out",
            )
        geoms[present] = parsed
    # Before any work on them: a footprint of too many vertices is refused here.
    _check_vertices(geoms, names)
    return doc, geoms, columns


def _declared_crs(doc: dict, label: str):
    """The CRS of a GeoJSON document: its old-style ``crs`` member, else WGS84 (RFC 7946)."""
    from pyproj.exceptions import CRSError

    member = doc.get("crs")
    if member is None:
        return _crs("EPSG:4326")
    name = member.get("properties", {}).get("name") if isinstance(member, dict) else None
    try:
        return _crs(str(name))
    except (CRSError, TypeError):
        raise ServiceError(
            422,
            "Invalid GeoJSON",
            f"{label}: its 'crs' member names no known CRS ({name!r}); leave it out (WGS84) or give ?crs=",
        ) from None


@lru_cache(maxsize=64)
def _crs(name: str):
    """A CRS by name, kept (building one from the PROJ database takes about a millisecond)."""
    from pyproj import CRS

    return CRS.from_user_input(name)


def _check_vertices(geoms: np.ndarray, names: list[str]) -> None:
    """Refuse a footprint of more vertices than the limit, naming it (``names``: one per geometry)."""
    counts = shapely.get_num_coordinates(geoms)
    over = np.flatnonzero(counts > limits.MAX_VERTICES_PER_FOOTPRINT)
    if len(over):
        k = int(over[0])
        raise limit_error(
            f"{names[k]}: vertices",
            int(counts[k]),
            limits.MAX_VERTICES_PER_FOOTPRINT,
            "MAX_VERTICES_PER_FOOTPRINT",
            "simplify the footprint",
        )


def safe_upload_name(filename: str | None) -> str:
    """The upload's name reduced to a plain file name (no folder, no path), with a suffix ``screen`` reads.

    No request can name a path on the server: only the last part of the
    name is kept, and only letters, digits, ``-``, ``_`` and ``.`` of it.
    """
    raw = PurePosixPath((filename or "").replace("\\", "/")).name
    suffix = PurePosixPath(raw).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise ServiceError(
            422,
            "Unsupported upload",
            f"upload {raw or '(no name)'!r}: not a format screen reads by "
            f"its name; send one of {', '.join(UPLOAD_SUFFIXES)} (a shapefile zipped with its .shx, .dbf and .prj)",
        )
    stem = re.sub(r"[^\w-]", "_", PurePosixPath(raw).stem)[:64].strip("._") or "upload"
    return stem + suffix


def check_archive(data: bytes, name: str) -> None:
    """Refuse an archive that is unreadable, a zip bomb, too many members, or has members outside itself."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ServiceError(422, "Unreadable archive", f"{name}: is not a readable zip archive ({exc})") from None
    if len(members) > limits.MAX_UPLOAD_ARCHIVE_MEMBERS:
        raise limit_error(
            f"{name}: members",
            len(members),
            limits.MAX_UPLOAD_ARCHIVE_MEMBERS,
            "MAX_UPLOAD_ARCHIVE_MEMBERS",
            "send fewer files",
        )
    total = sum(m.file_size for m in members)
    if total > limits.MAX_UPLOAD_ARCHIVE_BYTES:
        raise limit_error(
            f"{name}: uncompressed bytes",
            total,
            limits.MAX_UPLOAD_ARCHIVE_BYTES,
            "MAX_UPLOAD_ARCHIVE_BYTES",
            "send a smaller archive",
        )
    for member in members:
        path = member.filename.replace("\\", "/")
        if path.startswith("/") or re.match(r"^[A-Za-z]:", path) or ".." in PurePosixPath(path).parts:
            raise ServiceError(
                422,
                "Unsafe archive",
                f"{name}: member {member.filename!r} points outside the archive "
                "(absolute or '..'); pack the files with relative names",
            )
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 1024**2 and ratio > limits.MAX_COMPRESSION_RATIO:
            raise limit_error(
                f"{name}: member {member.filename!r}: compression ratio",
                ratio,
                limits.MAX_COMPRESSION_RATIO,
                "MAX_COMPRESSION_RATIO",
                "this looks like a zip bomb",
            )


def _hide(message: str, folder: str) -> str:
    """A message without the server's temporary folder (it names the upload as sent)."""
    return message.replace(f"{folder}/", "").replace(folder, "")


def _profile(raw) -> dict[str, Any]:
    """A siting profile from JSON: project attributes, checked as ``screen`` checks a feature's."""
    from threelines.input.attributes import ATTRIBUTES, check_attributes

    if not isinstance(raw, dict):
        raise ServiceError(422, "Invalid siting request", "'profile' must be an object of project attributes")
    unknown = sorted(set(raw) - set(ATTRIBUTES))
    if unknown:
        raise ServiceError(
            422, "Invalid siting request", f"profile: unknown attribute {unknown[0]!r}; use {', '.join(ATTRIBUTES)}"
        )
    values = {name: raw.get(name) for name in ATTRIBUTES}
    values["id"] = "profile"
    try:
        checked = check_attributes(values, "profile")
    except ThreelinesError as exc:
        raise ServiceError(422, "Invalid siting request", str(exc)) from None
    return {k: v for k, v in checked.items() if v is not None and k in raw}


def _zones_geojson(result, rules, profile: dict[str, Any]) -> str:
    """The zones in EPSG:4490 with their outcome, rules and area; the rules' outcome and title, and the summary."""
    zones = result.zones.to_crs(4490)
    features = []
    texts = shapely.to_geojson(shapely.set_precision(zones.geometry.to_numpy(), 1e-6))
    for zone, text in zip(zones.itertuples(), texts, strict=True):
        props = {
            "outcome": zone.outcome,
            "rules": [r for r in zone.rules.split(",") if r],
            "area_ha": round(float(zone.area_ha), 4),
        }
        features.append(f'{{"type":"Feature","properties":{orjson.dumps(props).decode()},"geometry":{text}}}')
    explain = {
        r.id: {"outcome": r.outcome, "title": r.title, "titles": dict(r.titles), "layer": r.layer,
               "dimension": r.dimension, "basis": r.basis}
        for r in rules.rules
    }  # fmt: skip
    # Access-list clauses fire in zones too: their text is their title.
    explain |= {
        c.id: {"outcome": c.outcome, "title": c.text, "titles": {}, "layer": None, "dimension": c.dimension,
               "basis": c.basis}
        for c in rules.clauses
    }  # fmt: skip
    extra = orjson.dumps({"profile": profile, "summary_m2": result.summary(), "rules": explain}).decode()[1:-1]
    return '{"type":"FeatureCollection","features":[' + ",".join(features) + "]," + extra + "}"


def _display_layers(manifest) -> dict[str, dict]:
    """Each vector layer in EPSG:4490 with its id, name and class, for the page's map."""
    import geopandas as gpd

    from threelines.layers.read import read_layer

    out = {}
    for name, spec in manifest.layers.items():
        if spec.role == "raster":
            continue
        data = read_layer(spec, manifest.working_crs)
        lonlat = gpd.GeoSeries(data.geometry, crs=manifest.working_crs).to_crs(4490).to_numpy()
        classes = data.classes if data.classes is not None else [None] * len(data)
        props = [
            {
                "id": str(i),
                "name": None if n is None else str(n),
                "class": None if c is None else str(c),
                "layer": name,
                "role": spec.role,
            }
            for i, n, c in zip(data.ids, data.names, classes, strict=True)
        ]
        out[name] = {"geometry": np.asarray(lonlat, dtype=object), "properties": props}
    return out


def _parse_bbox(text: str) -> tuple[float, float, float, float]:
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or not np.isfinite(box).all() or box[0] >= box[2] or box[1] >= box[3]:
        raise ServiceError(422, "Invalid bbox", f"bbox {text!r}: give west,south,east,north in degrees, west < east")
    return box  # type: ignore[return-value]


def _tolerance(zoom: float | None, tolerance: float | None) -> float:
    """Simplification step, degrees: as given, or half a pixel at a web-map zoom level."""
    if tolerance is not None:
        if not 0 <= tolerance <= 1:
            raise ServiceError(422, "Invalid tolerance", "tolerance: give degrees between 0 and 1")
        return float(tolerance)
    if zoom is None:
        return 0.0
    if not 0 <= zoom <= 24:
        raise ServiceError(422, "Invalid zoom", "zoom: give a web-map zoom level between 0 and 24")
    return 360.0 / (256 * 2**zoom) / 2


def _to_web_offset(geoms: np.ndarray, crs: str) -> np.ndarray:
    """Shift lon/lat geometries to a web map's offset coordinates (GCJ-02 or BD-09), for display only."""
    from threelines.input.crs import gcj02_to_bd09, wgs84_to_gcj02

    kind = crs.strip().lower()
    if kind == "gcj02":
        return shapely.transform(geoms, wgs84_to_gcj02)
    if kind == "bd09":
        return shapely.transform(geoms, lambda xy: gcj02_to_bd09(wgs84_to_gcj02(xy)))
    raise ServiceError(422, "Invalid crs", f"crs {crs!r}: layers are shown in EPSG:4490, or shifted for gcj02 or bd09")
