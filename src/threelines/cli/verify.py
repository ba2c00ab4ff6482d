"""``threelines verify``: re-screen a report and say whether it still holds."""

from __future__ import annotations

import click

from threelines.cli import options


@click.command(short_help="Re-screen a report and say whether its verdicts still hold.")
@click.argument("report", metavar="REPORT", type=click.Path())
@click.option("--layers", "layers", help="The layer manifest, moved: used instead of the recorded path.")
@click.option("--rules", "rules", help="The rule file, moved: used instead of the recorded path.")
@click.option("--input", "input_", help="The project input, moved: used instead of the recorded path.")
def verify(report, layers, rules, input_) -> None:
    """Re-screen the projects of REPORT from its provenance block and compare.

    REPORT is the JSON or HTML report of screen, or a batch's results.jsonl
    (with the provenance.json beside it) or its output folder. The manifest,
    rule file and input are used only when they have the sha256 the report
    records; --layers, --rules and --input point at them where they were
    moved (their sha256 must match too). Prints one line per project
    (unchanged, or what changed), the projects missing from the report, and
    the files whose sha256 differs from the report's.

    Exit codes: 0 every project, verdict, trigger and hash as recorded,
    1 something changed or is missing, 2 the report or a file it names
    cannot be read.
    """
    from threelines.errors import ThreelinesError
    from threelines.report.verify import Relocated
    from threelines.report.verify import verify as run_verify

    try:
        check = run_verify(report, Relocated(layers=layers, rules=rules, input=input_))
    except ThreelinesError as exc:
        raise options.InputError(str(exc)) from None
    for line in check.changed + check.unchanged:
        click.echo(line)
    for line in check.inputs:
        click.echo(f"input changed: {line}")
    total = len(check.changed) + len(check.unchanged)
    if check.ok:
        click.echo(f"{report}: unchanged ({len(check.unchanged)} project(s))", err=True)
        return
    files = f"; {len(check.inputs)} file(s) changed" if check.inputs else ""
    click.echo(f"{report}: {len(check.changed)} of {total} changed{files}", err=True)
    raise SystemExit(1)
