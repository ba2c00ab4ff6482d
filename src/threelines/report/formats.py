"""One entry point for every report format: text, JSON, HTML, Markdown, GeoJSON and GeoPackage evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from threelines.errors import OutputError

#: Formats whose reports carry the provenance block (the text summary does not).
CARRY_PROVENANCE = ("json", "html", "markdown", "geojson", "gpkg")

#: Formats, and the output extensions that choose them.
FORMATS = ("text", "json", "html", "markdown", "geojson", "gpkg")
EXTENSIONS = {
    ".txt": "text", ".json": "json", ".jsonl": "json", ".html": "html", ".htm": "html", ".md": "markdown",
    ".markdown": "markdown", ".geojson": "geojson", ".gpkg": "gpkg",
}  # fmt: skip


def choose_format(fmt: str | None, output: str | None) -> str:
    """The format asked for, else the one the output's extension names, else text."""
    if fmt:
        return fmt
    if output:
        return EXTENSIONS.get(Path(output).suffix.lower(), "text")
    return "text"


def write_report(
    screening,
    manifest,
    fmt: str,
    *,
    lang: str,
    provenance: dict[str, Any] | None = None,
    output: str | Path | None = None,
    overwrite: bool = False,
    indent: int | None = None,
) -> str | None:
    """Write a screening's report to ``output``, or return it for stdout.

    Parameters
    ----------
    screening : threelines.engine.screen.Screening
        The verdicts with their footprints and input CRS.
    manifest : Manifest
        The layers, read again near each footprint for maps and evidence.
    fmt : str
        One of :data:`FORMATS`.
    lang : str
        ``zh`` or ``en``.
    provenance : dict, optional
        The provenance block every report carries.
    output : str or Path, optional
        The file to write; None returns the text (a GeoPackage needs a file).
    overwrite : bool
        Replace an existing file.
    indent : int, optional
        Indentation of the JSON of a single project.

    Returns
    -------
    str or None
        The report text when there is no ``output``.
    """
    from threelines.report import write_output

    verdicts = screening.verdicts
    if fmt == "text":
        from threelines.report.text import format_text

        text = format_text(verdicts, lang)
    elif fmt == "json":
        from threelines.report.json import format_json

        # A .json file is one JSON document (an array for several projects); .jsonl and stdout: JSON Lines.
        array = output is not None and Path(output).suffix.lower() != ".jsonl"
        text = format_json(verdicts, indent=indent, provenance=provenance, lang=lang, array=array)
    elif fmt in ("html", "markdown"):
        from threelines.report import document, pages

        doc = document.build(verdicts, lang, provenance=provenance)
        if fmt == "markdown":
            text = pages.markdown_page(doc)
        else:
            from threelines.report.evidence import collect
            from threelines.report.map import render

            evidence = collect(verdicts, screening.footprints, manifest)
            records = [v.to_dict(lang) | ({"provenance": provenance} if provenance else {}) for v in verdicts]
            text = pages.html_page(doc, [render(e, lang, "svg") for e in evidence], records)
    else:
        from threelines.report.evidence import collect, evidence_frame
        from threelines.report.geo import write_evidence

        frame = evidence_frame(collect(verdicts, screening.footprints, manifest), manifest.working_crs)
        mark = next((v.jurisdiction["sample"] for v in verdicts if (v.jurisdiction or {}).get("sample")), None)
        if mark:  # the synthetic sample: every feature of the evidence says so, in any GIS
            frame["data"] = mark
        if output is None:
            if fmt == "gpkg":
                raise OutputError("a GeoPackage is a file: give -o NAME.gpkg")
            collection = json.loads(frame.to_crs(4490).to_json(drop_id=True))
            if provenance is not None:
                collection["provenance"] = provenance
            return json.dumps(collection, ensure_ascii=False) + "\n"
        write_evidence(frame, output, fmt, screening.crs, overwrite=overwrite, provenance=provenance)
        return None
    if output is None:
        return text
    write_output(text, output, overwrite=overwrite)
    return None
