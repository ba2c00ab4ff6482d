"""threelines: screen project footprints against China's "three lines, one list".

The library API under the ``threelines`` command::

    from threelines import screen
    result = screen("site.shp", layers="layers.yaml", rules="rules.yaml")
    for verdict in result.verdicts:
        print(verdict.project["id"], verdict.verdict)
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

# The public names are imported on first use so that `threelines --help`
# does not pay for importing geopandas, shapely and pyproj.
_EXPORTS = {
    "Screening": "threelines.engine.screen",
    "screen": "threelines.engine.screen",
    "screen_projects": "threelines.engine.screen",
    "ThreelinesError": "threelines.errors",
    "Trigger": "threelines.engine.verdict",
    "UnitShare": "threelines.engine.verdict",
    "Verdict": "threelines.engine.verdict",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'threelines' has no attribute {name!r}")
