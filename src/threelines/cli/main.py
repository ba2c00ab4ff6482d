"""The ``threelines`` command group: version, verbosity, and the commands."""

from __future__ import annotations

import gc
import logging
import signal
import warnings
from importlib import import_module

import click

from threelines import __version__
from threelines.cli import options, startup

#: The subcommands, each in the module of its name under threelines.cli: a run imports only the one it runs
#: (``threelines --help`` all of them, for their short help).
COMMANDS = ("batch", "init", "layers", "rules", "screen", "serve", "siting", "verify")


class LazyGroup(click.Group):
    """A command group that imports a subcommand's module when the subcommand is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The names of all the subcommands, without importing them."""
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The subcommand ``cmd_name``, its module imported (and its -v/-q options added) on first use."""
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            command = getattr(import_module(f"threelines.cli.{cmd_name}"), cmd_name)
            options.add_verbosity(command)
            self.add_command(command)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


def main() -> None:
    """Console-script entry point."""
    # A kill (SIGTERM, as a supervisor or a timeout sends) ends the run as Ctrl-C does: a running
    # PostGIS statement is cancelled on the server, temporary files and locks are released.
    signal.signal(signal.SIGTERM, _stop)
    startup.light_cel()
    try:
        cli(prog_name="threelines")
    finally:
        # The run is over and the process ends: what is left is frozen out of the full collections the
        # interpreter makes on its way out, which would walk every object (~5% of a one-project screening).
        gc.freeze()


def _stop(signum: int, frame) -> None:
    raise SystemExit(128 + signum)
