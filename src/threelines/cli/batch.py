"""``threelines batch``: screen every project of many inputs into a folder of results."""

from __future__ import annotations

from pathlib import Path

import click

from threelines.cli import options


@click.command(short_help="Screen many projects into a folder of results (resumable).")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False), help="Output folder.")
@options.layers_opt
@options.rules_opt
@options.project_options
@options.crs_opt
@options.encoding_opt
@click.option("--jobs", type=click.IntRange(min=1), help="Worker processes (default: every core).")
@click.option(
    "--chunk-size", type=click.IntRange(min=1),
    help="Projects per chunk (default: 2,500 down to 500 as the input runs out, so that the workers end together).",
)  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Start afresh in an existing output folder instead of resuming.")
@click.option(
    "--no-cache", "no_cache", is_flag=True,
    help="Neither read nor write the prepared-layer cache ($THREELINES_CACHE, default ~/.cache/threelines).",
)  # fmt: skip
@click.option("--reports", type=click.Path(file_okay=False), help="Also write one report per project into this folder.")
@click.option(
    "--report-format", type=click.Choice(["html", "markdown", "json", "geojson", "gpkg"]), default="html",
    show_default=True, help="The format of --reports.",
)  # fmt: skip
@click.option(
    "--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True,
    help="Screen in worker processes here, or on a Dask cluster.",
)  # fmt: skip
@click.option("--scheduler", help="The Dask scheduler (tcp://host:8786); without it --engine dask starts a local one.")
@options.lang_opt
@options.fail_on_opt
@click.pass_context
def batch(
    ctx,
    inputs,
    out,
    layers,
    rules,
    crs,
    encoding,
    jobs,
    chunk_size,
    overwrite,
    no_cache,
    reports,
    report_format,
    engine,
    scheduler,
    lang,
    fail_on,
    **kwargs,
) -> None:
    """Screen every feature of every INPUT (files, zips, folders, corner tables) into the folder OUTPUT.

    Writes results.jsonl (one object per project, as screen --format json,
    with error set for a project that could not be screened; each keyed by
    its source file, layer and feature, not its id), summary.csv,
    summary.xlsx and provenance.json (manifest, layers, rules and inputs
    with their sha256); with --reports, one report per project. Re-running with the same OUTPUT skips the projects
    already screened with the same inputs (by hash). Layers read whole are
    kept prepared in a cache folder, keyed by the layer files' hash, so
    repeated runs skip parsing them. Exit codes: 0 done,
    1 a verdict reached --fail-on, 2 a project or input could not be read.
    """
    from threelines.collector import collector_held

    with collector_held():  # the modules it imports are kept for the run: no cycle to find among them
        from threelines.batch.local import default_jobs, run_batch
        from threelines.errors import ThreelinesError
        from threelines.extras import require
        from threelines.report.i18n import default_language

    if scheduler and engine != "dask":
        raise click.UsageError("--scheduler is for --engine dask")
    overrides = options.pop_project_overrides(kwargs)
    quiet = (ctx.obj or {}).get("quiet", False)
    try:
        if engine == "dask":  # before anything is read or written
            require("dask", "batch --engine dask")
        manifest, ruleset = options.load_inputs(layers, rules)
        result = run_batch(
            list(inputs), out, manifest, ruleset, crs=crs, encoding=encoding, overrides=overrides,
            jobs=jobs or default_jobs(), chunk_size=chunk_size, overwrite=overwrite, progress=not quiet,
            cache=not no_cache, lang=lang or default_language(), reports=reports, reports_format=report_format,
            engine=engine, scheduler=scheduler,
        )  # fmt: skip
    except ThreelinesError as exc:
        raise options.InputError(str(exc)) from None
    for line in result.error_lines(Path(out) / "results.jsonl"):  # even when quiet: -q silences progress, not errors
        click.echo(line, err=True)
    if not quiet:
        click.echo(result.describe(), err=True)
    for line in result.rule_failures:
        click.echo(line, err=True)
    if result.errors:
        raise SystemExit(2)
    if fail_on == "unresolved" and result.unresolved:
        raise SystemExit(1)
    if fail_on in ("conditional", "reject") and (
        result.verdicts["reject"] or (fail_on == "conditional" and result.verdicts["conditional"])
    ):
        raise SystemExit(1)
