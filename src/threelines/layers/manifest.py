"""The layer manifest: which layers a jurisdiction has, checked against their files.

A manifest (YAML) lists the layers of one jurisdiction: red lines, control
units, quality-baseline zones, resource-cap zones, rasters and its boundary.
Loading a manifest checks everything that can be checked without reading
features (files, layers, fields, geometry types, CRS, encodings) and
chooses the working CRS; :mod:`threelines.layers.read` then reads the features.

Each layer entry is checked by :mod:`threelines.layers.entries` into a
:class:`~threelines.layers.spec.LayerSpec`; the whole makes a
:class:`~threelines.layers.spec.Manifest`. A manifest that checked clean is
kept (see :mod:`threelines.layers.kept`): while the manifest's bytes and its
layers' files are unchanged, the next run takes the layers' fields, extents
and CRSs from there instead of opening each file. A manifest with a PostGIS
layer is checked each run: a table changes without a file to look at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from threelines import industry, yamlio
from threelines.errors import CRSError, IndustryCodeError, ManifestError
from threelines.input.crs import fitted_albers, parse_crs
from threelines.layers.entries import check_entry, equal_area_metres, union_lonlat
from threelines.layers.kept import keep, kept_key, read_kept
from threelines.layers.spec import LayerSpec, Manifest


def load_manifest(path: str | Path) -> Manifest:
    """Read and check a layer manifest.

    Parameters
    ----------
    path : str or Path
        The manifest YAML file.

    Returns
    -------
    Manifest

    Raises
    ------
    ManifestError
        For an unreadable or malformed manifest, a missing file, layer or
        field, an unknown role, or a layer without a CRS; the message starts
        with ``manifest:line:`` and says how to fix it.
    """
    manifest, problems = check_manifest(path)
    if problems:
        raise ManifestError(problems[0])
    return manifest


def check_manifest(path: str | Path) -> tuple[Manifest | None, list[str]]:
    """Check a manifest and list every problem in it (see :func:`load_manifest`).

    Returns
    -------
    (Manifest or None, list of str)
        The manifest when it has no problem, and one message per problem.

    Raises
    ------
    ManifestError
        If the file cannot be read or is not YAML.
    """
    path = Path(path)
    doc, problems = yamlio.load_checked(path, "manifest.schema.json", ManifestError, "manifest (--layers)")
    if problems:
        return None, problems
    key = kept_key(doc)
    kept = read_kept(key, doc)
    if kept is not None:
        return kept, []
    manifest, problems = _check_document(doc)
    if manifest is not None:
        keep(key, manifest, doc)
    return manifest, problems


def _check_document(doc: yamlio.Located) -> tuple[Manifest | None, list[str]]:
    """Check a manifest's document, which fits the schema, against its layers' files."""
    path, problems = doc.path, []
    specs: dict[str, LayerSpec] = {}
    for i, entry in enumerate(doc.data["layers"]):
        where = doc.where("layers", i)
        if entry["name"] in specs:
            problems.append(f"{where}: layer name {entry['name']!r} is used twice; names must be unique")
            continue
        try:
            specs[entry["name"]] = check_entry(entry, path.parent, where)
        except ManifestError as exc:
            problems.append(str(exc))
    units = [s.name for s in specs.values() if s.role == "unit"]
    if len(units) > 1:
        problems.append(f"{path}: {len(units)} layers have role 'unit' ({', '.join(units)}); give exactly one")
    working = None
    if "working_crs" in doc.data:
        try:
            working = parse_crs(doc.data["working_crs"], what=f"{doc.where('working_crs')}: working_crs")
        except CRSError as exc:
            problems.append(str(exc))
        if working is not None and not equal_area_metres(working):
            given = " ".join(str(doc.data["working_crs"]).split())
            shown = given if len(given) <= 120 else given[:117] + "..."
            named = f" ({working.name})" if working.name and working.name != "unknown" else ""
            problems.append(
                f"{doc.where('working_crs')}: working_crs {shown!r}{named} is not an equal-area projection in metres "
                "(areas would be wrong); use e.g. '+proj=aea +lat_1=25 +lat_2=47 +lon_0=105 +ellps=GRS80 +units=m', "
                "or leave it out to have one fitted to the layers"
            )
    if problems:
        return None, problems
    extent = union_lonlat(specs.values())
    if working is None:
        working = fitted_albers(extent)
    name = doc.data.get("name", path.stem)
    widths = {}
    for prefix, width in doc.data.get("line_widths", {}).items():
        try:
            widths[prefix if prefix == "*" else industry.normalise(prefix, what="line_widths code")] = float(width)
        except IndustryCodeError as exc:
            return None, [f"{doc.where('line_widths', prefix)}: {exc}"]
    jurisdiction = _jurisdiction(doc.data.get("jurisdiction"), name, path, doc.data.get("sample") is True)
    rules = path.parent / doc.data["rules"] if "rules" in doc.data else None
    manifest = Manifest(
        path=path, name=name, layers=specs, working_crs=working, extent=extent, line_widths=widths,
        jurisdiction=jurisdiction, rules=rules,
    )  # fmt: skip
    return manifest, []


def _jurisdiction(entry: dict[str, Any] | None, name: str, path: Path, marked: bool) -> dict[str, Any] | None:
    """The manifest's ``jurisdiction`` block with all four keys (null where not given); None without one.

    The bundled sample's carries ``sample``: the mark every report of it
    shows. So does a manifest ``marked`` (``sample: true``): a copy of the
    sample's layers elsewhere, such as the one ``layers push`` writes.
    """
    from threelines import sample

    out = None if entry is None else {k: None if entry.get(k) is None else str(entry[k]) for k in JURISDICTION_KEYS}
    if marked or sample.is_sample(path):
        out = (out or {k: None for k in JURISDICTION_KEYS}) | {"sample": sample.SAMPLE_MARK}
        out["name"] = out["name"] or name
    return out


#: The keys of a manifest's ``jurisdiction`` block, as results carry it.
JURISDICTION_KEYS = ("name", "adcode", "version", "published")
