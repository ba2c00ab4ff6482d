"""``threelines layers check``: what is wrong with a jurisdiction's layers."""

from __future__ import annotations

import click


@click.group(short_help="Check the layers of a manifest.")
def layers() -> None:
    """Check the layers a manifest lists."""


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
    from threelines.layer_check import check_layers
    from threelines.manifest import check_manifest

    path = manifest_file or sample.manifest_path()
    try:
        manifest, problems = check_manifest(path)
        if manifest is not None:
            problems = check_layers(manifest)
    except ThreelinesError as exc:
        raise InputError(str(exc)) from None
    report_problems(problems, f"the layers of {path}")
    click.echo(f"{path}: {len(manifest.layers)} layers, no problems")
