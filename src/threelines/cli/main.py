"""The ``threelines`` command group: version, verbosity, and the commands."""

from __future__ import annotations

import logging
import signal
import warnings

import click

from threelines import __version__
from threelines.cli import options, startup
from threelines.cli.batch import batch
from threelines.cli.init import init
from threelines.cli.layers import layers
from threelines.cli.rules import rules
from threelines.cli.screen import screen
from threelines.cli.serve import serve
from threelines.cli.siting import siting
from threelines.cli.verify import verify


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="threelines")
@click.option("-v", "--verbose", count=True, help="More messages on stderr (-vv for debugging).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr (no progress bar).")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Screen project footprints against China's "three lines, one list" (三线一单).

    Answers pass, conditional or reject for each project, with every
    constraint that triggered and the evidence. Run `threelines screen -h`.
    """
    logging.basicConfig(format="threelines: %(levelname)s: %(message)s", force=True)
    ctx.obj = {}
    options.verbosity(ctx, verbose, quiet)  # -q and -v after the subcommand add to these (see options.add_verbosity)
    # Library warnings (GDAL's among them) become one log line each, without source lines.
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"{category.__name__}: {message}"
    logging.captureWarnings(True)


cli.add_command(screen)
cli.add_command(batch)
cli.add_command(rules)
cli.add_command(layers)
cli.add_command(verify)
cli.add_command(siting)
cli.add_command(init)
cli.add_command(serve)
options.add_verbosity(cli)


def main() -> None:
    """Console-script entry point."""
    # A kill (SIGTERM, as a supervisor or a timeout sends) ends the run as Ctrl-C does: a running
    # PostGIS statement is cancelled on the server, temporary files and locks are released.
    signal.signal(signal.SIGTERM, _stop)
    startup.light_cel()
    cli(prog_name="threelines")


def _stop(signum: int, frame) -> None:
    raise SystemExit(128 + signum)
