"""``threelines init``: a jurisdiction's published data package -> a ready jurisdiction folder."""

from __future__ import annotations

import click

from threelines.cli import options


@click.command(short_help="Import a published 三线一单 data package as a ready jurisdiction.")
@click.argument("package", metavar="PACKAGE", type=click.Path())
@click.option("-o", "--output", "out", required=True, type=click.Path(), help="The jurisdiction folder to write.")
@click.option("--overwrite", is_flag=True, help="Replace the folder if it exists.")
@click.option("--units", help="The control-unit layer (file or file:layer) when several look like units.")
@click.option("--redline", help="The red-line layer (file) when its name does not say 红线.")
@click.option("--encoding", help="Encoding of shapefiles without .cpg, e.g. GBK (guessed otherwise).")
@click.option("--crs", help="CRS of layers that have none, e.g. 4490 or 4527.")
@click.option("--name", help="The jurisdiction's name (default: what the units' PROV / CITY / AREA say).")
@click.option("--adcode", help="Its 6-digit administrative code (default: from the unit codes).")
@click.option("--data-version", "version", help="The version of the published data.")
@click.option("--published", help="The date the data was published, e.g. 2024-06-30.")
@click.option(
    "--keywords", type=click.Path(dir_okay=False), help="Your own industry keyword table (word,codes) extending ours."
)
def init(package, out, overwrite, units, redline, encoding, crs, name, adcode, version, published, keywords) -> None:
    """Read PACKAGE (folder, zip, .gdb, .gpkg, or XLSX/CSV lists) and write a jurisdiction to -o DIR.

    Layers are recognised by their fields (HJZHGKDYBM / 环境管控单元编码,
    ZHGKDYFL, KJBJYS, ... in any case); each prose cell becomes numbered
    clauses with their level, type and industries. DIR gets layers.yaml,
    rules.yaml, access_list.csv (the clause table) and IMPORT.md (what was
    recognised, what was not, and the clauses to review). On any ambiguity
    nothing is written: exit 2 with one line naming the file and the fix.
    """
    from threelines.errors import ThreelinesError
    from threelines.package.build import init_package

    try:
        result = init_package(
            package, out, units=units, redline=redline, encoding=encoding, crs=crs, overwrite=overwrite,
            name=name, adcode=adcode, version=version, published=published, keywords=keywords,
        )  # fmt: skip
    except ThreelinesError as exc:
        raise options.InputError(str(exc)) from None
    click.echo(
        f"{result.folder}: {result.name} ({result.adcode or 'no adcode'}): layers {', '.join(result.layers)}; "
        f"{result.clauses} clauses, {result.review} to review (see IMPORT.md)"
    )
    if result.unrecognised:
        click.echo(f"not recognised (listed in IMPORT.md): {', '.join(result.unrecognised)}", err=True)
    click.echo(f"screen with: threelines screen --layers {result.folder}/layers.yaml SITE", err=True)
