"""Options shared by commands, with callbacks that check values early (exit 2)."""

from __future__ import annotations

import logging

import click


class InputError(click.ClickException):
    """Bad input found while running a command: one line on stderr, exit code 2."""

    exit_code = 2


def _industry(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from threelines import industry
    from threelines.errors import IndustryCodeError

    try:
        return industry.normalise(value)
    except IndustryCodeError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


layers_opt = click.option(
    "--layers",
    "layers",
    type=click.Path(dir_okay=False),
    help="Layer manifest (YAML). Default: THREELINES_LAYERS, else threelines.toml, else the bundled sample.",
)
rules_opt = click.option(
    "--rules",
    "rules",
    type=click.Path(dir_okay=False),
    help="Rule file (YAML). Default: the manifest's rules, else THREELINES_RULES / threelines.toml, else the sample's.",
)
crs_opt = click.option(
    "--crs",
    help="CRS of the footprint (overrides the file's): EPSG code (4490, 4527), WKT or PROJ string, "
    "or gcj02 / bd09 for web-map coordinates.",
)
encoding_opt = click.option("--encoding", help="Attribute encoding of the footprint file, e.g. GBK.")
output_opt = click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write to this file instead of stdout."
)
overwrite_opt = click.option("--overwrite", is_flag=True, help="Replace the output file if it exists.")
lang_opt = click.option(
    "--lang",
    type=click.Choice(["zh", "en"]),
    help="Report language (default: Chinese under a zh locale, else English).",
)
fail_on_opt = click.option(
    "--fail-on",
    type=click.Choice(["conditional", "reject", "unresolved"]),
    help="Exit with code 1 when any verdict is at least this bad (unresolved: when any project has a rule "
    "that could not be decided).",
)

#: Project attributes as options: (option, attribute, type, help).
PROJECT_OPTIONS = [
    ("--id", "id", str, "Project id."),
    ("--name", "name", str, "Project name."),
    ("--industry", "industry", str, "GB/T 4754-2017 industry code, e.g. C2614 or 2614."),
    ("--kind", "kind", click.Choice(["area", "linear", "point"]), "Kind of project (default: from the geometry)."),
    ("--width", "width", click.FloatRange(min=0, min_open=True), "Width in metres of a linear project."),
    ("--radius", "radius", click.FloatRange(min=0, min_open=True), "Radius in metres of a point site."),
    ("--fuel", "fuel", str, "Fuel burnt: coal, heavy_oil, diesel, gas, lpg, biomass, electricity, none."),
    ("--water-source", "water_source", str, "Water source: groundwater, surface, municipal, reclaimed, none."),
    ("--emit-so2", "emit_so2", click.FloatRange(min=0), "SO2 emission, t/a."),
    ("--emit-nox", "emit_nox", click.FloatRange(min=0), "NOx emission, t/a."),
    ("--emit-vocs", "emit_vocs", click.FloatRange(min=0), "VOCs emission, t/a."),
    ("--emit-pm", "emit_pm", click.FloatRange(min=0), "Particulate matter emission, t/a."),
    ("--emit-cod", "emit_cod", click.FloatRange(min=0), "COD discharge, t/a."),
    ("--emit-nh3n", "emit_nh3n", click.FloatRange(min=0), "NH3-N discharge, t/a."),
    ("--water-m3", "water_m3", click.FloatRange(min=0), "Water use, m3/a."),
]


def project_options(func):
    """Add the project-attribute options; they override the file's columns for every feature."""
    for flag, attr, kind, text in reversed(PROJECT_OPTIONS):
        callback = _industry if attr == "industry" else None
        func = click.option(flag, f"attr_{attr}", type=kind, callback=callback, help=text)(func)
    return func


def pop_project_overrides(kwargs: dict) -> dict:
    """Take the project-attribute options out of a command's keyword arguments."""
    return {key[5:]: kwargs.pop(key) for key in list(kwargs) if key.startswith("attr_")}


def verbosity(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Set how much goes to stderr: ``-q`` only errors (no progress bar), ``-v`` more, ``-vv`` debugging.

    Given before the subcommand and after it alike; counts of ``-v`` add up.
    """
    if ctx.obj is None:
        ctx.obj = {}
    ctx.obj["quiet"] = ctx.obj.get("quiet", False) or quiet
    ctx.obj["verbose"] = ctx.obj.get("verbose", 0) + verbose
    levels = (logging.WARNING, logging.INFO, logging.DEBUG)
    logging.getLogger().setLevel(logging.ERROR if ctx.obj["quiet"] else levels[min(ctx.obj["verbose"], 2)])


def _verbose_after(ctx: click.Context, param: click.Parameter, value: int) -> None:
    if value:
        verbosity(ctx, value, False)


def _quiet_after(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        verbosity(ctx, 0, True)


def verbosity_options() -> list[click.Option]:
    """``-v/--verbose`` and ``-q/--quiet``, for after a subcommand (as they are typed: ``threelines batch ... -q``)."""
    return [
        click.Option(
            ["-v", "--verbose"], count=True, expose_value=False, callback=_verbose_after,
            help="More messages on stderr (-vv for debugging).",
        ),
        click.Option(
            ["-q", "--quiet"], is_flag=True, expose_value=False, callback=_quiet_after,
            help="Only errors on stderr (no progress bar).",
        ),
    ]  # fmt: skip


def add_verbosity(command: click.Command) -> None:
    """Give ``command`` (and each subcommand of a group) the options of :func:`verbosity_options`."""
    names = {name for param in command.params for name in param.opts}
    if not names & {"-q", "-v", "--quiet", "--verbose"}:
        command.params.extend(verbosity_options())
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            add_verbosity(subcommand)


def report_problems(problems: list[str], where: str) -> None:
    """Print a checker's problems one per line on stdout, count them on stderr, exit 2 if any."""
    for problem in problems:
        click.echo(problem)
    if problems:
        click.echo(f"{len(problems)} problem{'s' * (len(problems) != 1)} in {where}", err=True)
        raise SystemExit(2)


def wkt_frame(text: str):
    """A one-feature GeoDataFrame from ``--wkt``; a parse error becomes a usage error of the option."""
    from threelines.errors import FootprintError
    from threelines.input.wkt import wkt_frame as frame_of

    try:
        return frame_of(text)
    except FootprintError as exc:
        raise click.BadParameter(str(exc).removeprefix("--wkt: "), param_hint="'--wkt'") from None


def load_inputs(layers: str | None, rules: str | None):
    """The manifest and rule set a command names, else the configured ones, else the bundled sample's.

    See :func:`threelines.sample.resolve_layers` (``THREELINES_LAYERS``, ``threelines.toml``).
    """
    from threelines import sample
    from threelines.layers.manifest import load_manifest
    from threelines.rules import load_rules

    manifest = load_manifest(sample.resolve_layers(layers))
    return manifest, load_rules(sample.resolve_rules(rules, manifest.rules), manifest)
