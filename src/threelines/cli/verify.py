"""``threelines verify``: re-screen a JSON report and say whether its verdicts still hold."""

from __future__ import annotations

import click

from threelines.cli import options


@click.command(short_help="Re-screen a JSON report and say whether its verdicts still hold.")
@click.argument("report", metavar="REPORT.json", type=click.Path(dir_okay=False))
def verify(report) -> None:
    """Re-screen the projects of REPORT.json from its provenance block and compare.

    The input, manifest, rules and options named in the report are used as
    they are now. Prints one line per project (unchanged, or what changed)
    and the input files whose sha256 differs from the report's.

    Exit codes: 0 every verdict and trigger unchanged, 1 something changed,
    2 the report or its input cannot be read.
    """
    from threelines.errors import ThreelinesError
    from threelines.verify import verify as run_verify

    try:
        check = run_verify(report)
    except ThreelinesError as exc:
        raise options.InputError(str(exc)) from None
    for line in check.changed + check.unchanged:
        click.echo(line)
    for line in check.inputs:
        click.echo(f"input changed: {line}")
    if check.ok:
        click.echo(f"{report}: unchanged ({len(check.unchanged)} project(s))", err=True)
    else:
        click.echo(f"{report}: {len(check.changed)} of {len(check.changed) + len(check.unchanged)} changed", err=True)
        raise SystemExit(1)
