"""``threelines layers``: check a jurisdiction's layers, or move them into PostGIS."""

from __future__ import annotations

import click


@click.group(short_help="Check the layers of a manifest, or push them into PostGIS.")
def layers() -> None:
    """Check the layers a manifest lists, or load them into PostGIS."""


@layers.command(short_help="List every problem in a manifest's layers.")
@click.argument("manifest_file", metavar="[MANIFEST]", required=False, type=click.Path(dir_okay=False))
def check(manifest_file) -> None:
    """Check MANIFEST (default: the bundled sample) and every layer it lists.

    Every problem of the manifest itself (missing files, fields, CRS), or,
    when it has none, of its layers: invalid or empty geometries (with where they are), duplicate ids, text
    that looks mis-decoded, and control units that do not tile the territory
    (overlaps and gaps, with their area and location; give a layer of role
    boundary to find gaps along the edge too). One problem per line on
    stdout; exit 0 when there is none, 2 otherwise.
    """
    from threelines import sample
    from threelines.cli.options import InputError, report_problems
    from threelines.errors import ThreelinesError
    from threelines.layers.check import check_layers
    from threelines.layers.manifest import check_manifest

    try:
        path = sample.resolve_layers(manifest_file)
        manifest, problems = check_manifest(path)
        if manifest is not None:
            problems = check_layers(manifest)
    except ThreelinesError as exc:
        raise InputError(str(exc)) from None
    report_problems(problems, f"the layers of {path}")
    click.echo(f"{path}: {len(manifest.layers)} layers, no problems")


@layers.command(short_help="Load a manifest's layers into PostGIS and write a manifest that points at them.")
@click.argument("manifest_file", metavar="MANIFEST", type=click.Path(dir_okay=False, exists=True))
@click.option(
    "--to", "url", required=True, help="postgresql://user@host:port/db (password in PGPASSWORD or ~/.pgpass)."
)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The new manifest to write.")
@click.option("--schema", default="public", show_default=True, help="Schema for the tables (created if missing).")
@click.option("--dsn-env", help="Name this environment variable for the connection in the new manifest, not the URL.")
@click.option("--overwrite", is_flag=True, help="Replace existing tables and an existing output manifest.")
def push(manifest_file, url, output, schema, dsn_env, overwrite) -> None:
    """Copy every vector layer of MANIFEST into PostGIS tables (FIDs, attributes, GiST index).

    Tables are named SCHEMA.LAYER_NAME; raster layers stay files. The new
    manifest (-o) lists the same layers, read from the database; verdicts
    from it equal those from the files. Exit codes: 0 done, 2 bad input.
    """
    from threelines.cli.options import InputError
    from threelines.errors import ThreelinesError
    from threelines.layers.manifest import load_manifest
    from threelines.layers.push import push_layers

    try:
        lines = push_layers(
            load_manifest(manifest_file), url, output, schema=schema, dsn_env=dsn_env, overwrite=overwrite
        )
    except ThreelinesError as exc:
        raise InputError(str(exc)) from None
    for line in lines:
        click.echo(line)
    click.echo(f"wrote {output}", err=True)
