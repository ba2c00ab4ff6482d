"""``threelines serve``: the consultation service (web page and HTTP API) over one jurisdiction's layers."""

from __future__ import annotations

import ipaddress

import click

from threelines.cli import options
from threelines.limits import MAX_UPLOAD_BYTES, REQUEST_TIME_LIMIT_S


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@click.command(short_help="Serve the web page and the HTTP API: screening and siting in milliseconds.")
@options.layers_opt
@options.rules_opt
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind. Any other than loopback needs THREELINES_TOKEN or --no-auth.",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to bind.")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Worker processes, each with the layers in memory (about one per core).",
)
@click.option(
    "--max-upload",
    type=click.IntRange(1),
    default=MAX_UPLOAD_BYTES,
    show_default=True,
    help="Largest request body (an upload or a GeoJSON document), bytes.",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(0, min_open=True),
    default=REQUEST_TIME_LIMIT_S,
    show_default=True,
    help="Seconds a request may take before it is answered 503.",
)
@click.option("--no-auth", is_flag=True, help="Serve a non-loopback host without a token (prints a warning).")
@click.option("--cors", metavar="ORIGIN", help="Allow browser calls from this origin (CORS is off without it).")
@click.option("--tiles", metavar="URL", help="A base-map tile URL ({z}/{x}/{y}), e.g. a 天地图 URL with its key.")
@click.option(
    "--tiles-crs",
    type=click.Choice(["wgs84", "gcj02"]),
    default="wgs84",
    show_default=True,
    help="Coordinates of the tiles: gcj02 for most Chinese web maps (the overlay is shifted to match).",
)
@click.option("--tiles-attribution", help="The attribution the tile provider requires.")
def serve(
    layers, rules, host, port, workers, max_upload, time_limit, no_auth, cors, tiles, tiles_crs, tiles_attribution
) -> None:
    """Serve a web page and an HTTP API that screen footprints and site projects against the layers.

    The manifest and rules are loaded once and held in memory. The page is at
    http://HOST:PORT/, the API under /v1/ (documented at /docs and
    /openapi.json). The service binds 127.0.0.1 unless --host is given; on
    any other address API calls need the bearer token in THREELINES_TOKEN,
    or --no-auth. Logs: one line per request on stderr.

    Exit codes: 0 stopped, 2 bad input.
    """
    import os

    from threelines.extras import ExtraMissing, require

    try:
        require("serve", "threelines serve")
    except ExtraMissing as exc:
        raise options.InputError(str(exc)) from None
    import uvicorn

    from threelines.errors import ThreelinesError
    from threelines.serve.app import CONFIG_ENV, Config, config_dict, create_app, quiet_footprint_logs
    from threelines.serve.guards import TOKEN_ENV

    token = os.environ.get(TOKEN_ENV) or None
    open_host = not is_loopback(host)
    if open_host and not token and not no_auth:
        raise click.UsageError(
            f"--host {host} is reachable from other machines: set {TOKEN_ENV} (clients send it as a bearer "
            "token), or give --no-auth to serve without one"
        )
    if open_host and no_auth and not token:
        click.echo(f"Warning: serving {host}:{port} with no token: anyone who reaches it can use it", err=True)
    config = Config(
        layers=layers,
        rules=rules,
        max_upload=max_upload,
        time_limit_s=time_limit,
        require_token=open_host and not no_auth,
        cors=cors,
        tiles=tiles,
        tiles_crs=tiles_crs,
        tiles_attribution=tiles_attribution,
    )
    quiet_footprint_logs()
    settings = {"host": host, "port": port, "access_log": False, "log_level": "warning", "timeout_graceful_shutdown": 5}
    try:
        if workers == 1:
            app = create_app(config)
            click.echo(f"threelines: serving {app.state.service.manifest.name} on http://{host}:{port}/", err=True)
            uvicorn.run(app, **settings)
        else:
            options.load_inputs(layers, rules)  # checked once here: a bad manifest is one line, not one per worker
            os.environ[CONFIG_ENV] = config_dict(config)
            click.echo(f"threelines: serving on http://{host}:{port}/ with {workers} workers", err=True)
            uvicorn.run(
                "threelines.serve.app:factory",
                factory=True,
                workers=workers,
                http="threelines.serve.sharing:SharingProtocol",
                **settings,
            )
    except ThreelinesError as exc:
        raise options.InputError(str(exc)) from None
