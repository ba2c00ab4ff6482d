"""``threelines screen``: screen the projects of a footprint file."""

from __future__ import annotations

import click

from threelines.cli import options
from threelines.collector import collector_held, resume_collector


@click.command(short_help="Screen project footprints: pass, conditional or reject.")
@click.argument("footprint", metavar="FOOTPRINT", required=False)
@click.option(
    "--wkt", help="The footprint as WKT instead of a file; give its --crs (GK eastings with a zone prefix need none)."
)
@options.layers_opt
@options.rules_opt
@options.project_options
@options.crs_opt
@options.encoding_opt
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "html", "markdown", "geojson", "gpkg"]),
    help="Report format [default: from the -o extension (.json .html .md .geojson .gpkg), else text].",
)
@click.option("--indent", type=click.IntRange(0, 8), help="Indent the JSON of a single project.")
@options.lang_opt
@options.output_opt
@options.overwrite_opt
@options.fail_on_opt
@collector_held()
def screen(
    footprint, wkt, layers, rules, crs, encoding, fmt, indent, lang, output, overwrite, fail_on, **kwargs
) -> None:
    """Screen every feature of FOOTPRINT (one project each) against the layers and rules.

    FOOTPRINT is a Shapefile (also zipped), GeoJSON (- reads it from stdin),
    GeoPackage (file.gpkg:layer picks a layer), KML/KMZ, DXF, FlatGeobuf,
    GeoParquet, a corner-coordinate table (CSV/XLSX), or a zip or folder of
    them; or give --wkt. Project attributes come from columns named id,
    name, industry, kind, width, radius, fuel, water_source, emit_so2,
    emit_nox, emit_vocs, emit_pm, emit_cod, emit_nh3n and water_m3; the
    options below override them for every feature.

    Reports: text, JSON (with a provenance block), a self-contained HTML
    page with a map (prints on A4), Markdown, or the evidence layer as
    GeoJSON or GeoPackage (footprint and overlap pieces, in EPSG:4490 and
    in the footprint's own CRS).

    Exit codes: 0 screened, 1 a verdict reached --fail-on, 2 bad input.
    """
    from threelines.cachedir import cache_folder
    from threelines.engine.screen import screen as run_screen
    from threelines.errors import ThreelinesError
    from threelines.report.formats import CARRY_PROVENANCE, choose_format, write_report
    from threelines.report.i18n import default_language
    from threelines.report.provenance import HashMemo, provenance
    from threelines.rules.failures import RuleFailures

    overrides = options.pop_project_overrides(kwargs)
    if (footprint is None) == (wkt is None):
        raise click.UsageError("give a FOOTPRINT file or --wkt, not both and not neither")
    source = footprint
    if wkt is not None:
        footprint = options.wkt_frame(wkt)
    fmt = choose_format(fmt, output)
    try:
        if output is not None:
            from threelines.report import refuse_existing

            refuse_existing(output, overwrite=overwrite)  # before the work, not after it
        manifest, ruleset = options.load_inputs(layers, rules)
        result = run_screen(footprint, manifest, ruleset, crs=crs, encoding=encoding, overrides=overrides)
        for problem in result.problems:
            click.echo(f"Error: {problem}", err=True)
        if result.verdicts:
            # Hashing every layer is only worth it for the reports that carry it; files unchanged since an
            # earlier run have their hashes remembered in the cache folder, as a batch has them.
            memo = HashMemo(cache_folder()) if fmt in CARRY_PROVENANCE else None
            block = None if memo is None else provenance(
                manifest, ruleset, source=source, wkt=wkt,
                options={"crs": crs, "encoding": encoding, **{k: v for k, v in overrides.items() if v is not None}},
                project_count=len(result.verdicts), memo=memo,
            )  # fmt: skip
            if memo is not None:
                memo.save()
            # A report's maps make and drop many objects in cycles, with no limit on their count: the collector,
            # held for reading and screening, works again.
            resume_collector()
            text = write_report(
                result, manifest, fmt, lang=lang or default_language(), provenance=block, output=output,
                overwrite=overwrite, indent=indent,
            )  # fmt: skip
            if text is not None:
                click.echo(text, nl=False)
    except ThreelinesError as exc:
        raise options.InputError(str(exc)) from None
    failures = RuleFailures()
    failures.add_verdicts(result.verdicts)
    for line in failures.report():
        click.echo(line, err=True)
    if result.problems:
        raise SystemExit(2)
    if fail_on == "unresolved" and any(v.unresolved for v in result.verdicts):
        raise SystemExit(1)
    if fail_on in ("conditional", "reject") and any(v.reaches(fail_on) for v in result.verdicts):
        raise SystemExit(1)
