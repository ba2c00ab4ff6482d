"""The service's state and work: layers and rules loaded once, screened and zoned through the CLI's code paths.

Everything here is plain Python (no web framework), so that it can be
tested and timed on its own. The HTTP layer (:mod:`threelines.serve.answers`)
turns :class:`~threelines.serve.problems.ServiceError` into problem+json
answers. Requests are checked by :mod:`~threelines.serve.uploads`, screened
together by :mod:`~threelines.serve.coalesce`, and the map's layers made by
:mod:`~threelines.serve.display`.

What the service holds in memory: every vector layer the rules read (and
the unit layer), read whole and indexed once (as a batch's workers do),
the provenance block of the manifest and rules (hashed once), and each
vector layer in EPSG:4490 for display.
"""

from __future__ import annotations

import gzip
import hashlib
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import shapely

from threelines import limits
from threelines.errors import ThreelinesError
from threelines.serve.coalesce import COALESCE_WAIT_S, Coalescer
from threelines.serve.display import (
    PAGE_ZOOM,
    Shown,
    display_layers,
    parse_bbox,
    simplify_tolerance,
    to_web_offset,
    zones_geojson,
)
from threelines.serve.problems import ServiceError, refuse_over
from threelines.serve.uploads import (
    ZIP_MAGIC,
    check_archive,
    check_vertices,
    geojson_projects,
    read_json,
    safe_upload_name,
)

#: Formats of a screening's answer besides JSON, with their media types.
REPORT_MEDIA = {
    "json": "application/json",
    "html": "text/html; charset=utf-8",
    "markdown": "text/markdown; charset=utf-8",
    "geojson": "application/geo+json",
}


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
        self.display = display_layers(self.manifest)
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
            box = parse_bbox(bbox)
            keep = np.flatnonzero(shapely.intersects(geoms, shapely.box(*box)))
            geoms = shapely.clip_by_rect(geoms[keep], *box)
        refuse_over(f"layer {name!r}", len(keep), "MAX_LAYER_FEATURES_SHOWN", "give a smaller bbox")
        step = simplify_tolerance(zoom, tolerance)
        if step > 0:
            geoms = shapely.simplify(geoms, step, preserve_topology=True)
        if crs is not None:
            geoms = to_web_offset(geoms, crs)
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
        refuse_over("q", len(text), "MAX_QUERY_CHARS", "search with fewer words")
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
        if data[:4] == ZIP_MAGIC:
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
        refuse_over(
            "projects in the upload",
            total,
            "MAX_PROJECTS_PER_REQUEST",
            "split them over several requests, or use `threelines batch`",
        )
        check_vertices(projects.geometry, [f"project {a['id']!r}" for a in projects.attrs])
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

        doc = read_json(body, "request body")
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
        text = zones_geojson(result, self.rules, profile)
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
