"""``threelines siting``: the zones of a region where a project of a given profile could go."""

from __future__ import annotations

import click

from threelines.cli import options

#: The project attributes a siting takes: a profile has no id, name or footprint (so no width or radius).
PROFILE_ATTRIBUTES = ("industry", "fuel", "water_source", "emit_so2", "emit_nox", "emit_vocs", "emit_pm", "emit_cod",
                      "emit_nh3n", "water_m3")  # fmt: skip


def profile_options(func):
    """Add the profile's options (as ``screen`` names them), and ``--kind``, which a siting defaults to area."""
    for flag, attr, kind, text in reversed(options.PROJECT_OPTIONS):
        if attr in PROFILE_ATTRIBUTES:
            callback = options._industry if attr == "industry" else None
            func = click.option(flag, f"attr_{attr}", type=kind, callback=callback, help=text)(func)
    return click.option(
        "--kind", "attr_kind", type=click.Choice(["area", "linear", "point"]),
        help="Kind of project the rules see (default: area, as the sites probed are areas).",
    )(func)  # fmt: skip


@click.command(short_help="Map where a project of a given profile would pass, be conditional or be rejected.")
@options.layers_opt
@options.rules_opt
@profile_options
@click.option("--region", type=click.Path(dir_okay=False, exists=True), help="A polygon file: the area to zone.")
@click.option("--adcode", help="The id (e.g. adcode) of a feature of the manifest's boundary layer to zone.")
@click.option("--crs", help="CRS of the --region file (overrides the file's): EPSG code (4490, 4527), WKT or PROJ "
              "string, or gcj02 / bd09 for web-map coordinates.")  # fmt: skip
@click.option("--encoding", help="Attribute encoding of the --region file, e.g. GBK for a shapefile without .cpg.")
@click.option("--min-area", type=click.FloatRange(min=0, min_open=True), help="List contiguous pass and "
              "conditional areas of at least this many hectares, largest first.")  # fmt: skip
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="zones.gpkg or zones.geojson; the map (.png) and report (.html) are written beside it.")  # fmt: skip
@options.lang_opt
@options.overwrite_opt
def siting(layers, rules, region, adcode, crs, encoding, min_area, output, lang, overwrite, **kwargs) -> None:
    """Partition a region into pass, conditional and reject zones for a hypothetical project.

    Give the project's profile as for screen (--industry, --emit-vocs,
    --fuel, ...). The region is --region FILE, or --adcode CODE from the
    manifest's boundary layer, or by default the whole boundary layer.
    Writes the zones (outcome, the rules that cause it, area) to -o with
    the candidate areas (--min-area) as a second layer, a PNG map and a
    self-contained HTML report beside it, and prints the area by outcome.
    Exit codes: 0 done, 2 bad input.
    """
    from pathlib import Path

    from threelines.errors import ThreelinesError
    from threelines.report.i18n import default_language
    from threelines.siting.output import write_siting

    profile = {k: v for k, v in options.pop_project_overrides(kwargs).items() if v is not None}
    if region and adcode:
        raise click.UsageError("give --region or --adcode, not both")
    if (crs or encoding) and not region:
        raise click.UsageError(f"--{'crs' if crs else 'encoding'} describes the --region file; give --region")
    if Path(output).suffix.lower() not in (".gpkg", ".geojson"):
        raise click.UsageError("-o must end in .gpkg or .geojson")
    try:
        manifest, ruleset = options.load_inputs(layers, rules)
        lines = write_siting(
            manifest, ruleset, profile, output, region_file=region, adcode=adcode, crs=crs, encoding=encoding,
            min_area_ha=min_area, lang=lang or default_language(), overwrite=overwrite,
        )  # fmt: skip
    except ThreelinesError as exc:
        raise options.InputError(str(exc)) from None
    for line in lines:
        click.echo(line)
