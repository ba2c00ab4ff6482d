"""Which layers and rules to use when none are named, and where the bundled sample lives.

Without ``--layers`` the layers come from ``THREELINES_LAYERS``, else from a
``threelines.toml`` in the working folder, else from one in the user's
config folder (``$XDG_CONFIG_HOME/threelines/`` or ``~/.config/threelines/``).
Only when none is set is the bundled synthetic sample used, and then stderr
says so and every report carries :data:`SAMPLE_MARK`.

In a source checkout the sample is ``data/sample/`` at the top of the
repository; a built wheel carries a copy inside the package as
``threelines/sample/``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from threelines.errors import ManifestError

log = logging.getLogger(__name__)

#: The mark every report of a screening against the bundled sample carries.
SAMPLE_MARK = "SAMPLE DATA — synthetic layers"

#: The name of the settings file that names a jurisdiction's layers (``layers = "..."``, ``rules = "..."``).
CONFIG_NAME = "threelines.toml"


def sample_dir() -> Path:
    """Return the folder of the bundled sample data.

    Raises
    ------
    ManifestError
        If neither location holds the sample (give --layers and --rules).
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "sample", here.parents[1] / "data" / "sample"):
        if (candidate / "layers.yaml").is_file():
            return candidate
    raise ManifestError("the bundled sample data is not installed; give --layers MANIFEST and --rules RULES")


def manifest_path() -> Path:
    """The sample layer manifest."""
    return sample_dir() / "layers.yaml"


def rules_path() -> Path:
    """The sample rule file."""
    return sample_dir() / "rules.yaml"


def config_files() -> list[Path]:
    """The ``threelines.toml`` files looked for, in order: the working folder, then the user's config folder."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [Path.cwd() / CONFIG_NAME, base / "threelines" / CONFIG_NAME]


def _setting(key: str) -> Path | None:
    """A path from ``THREELINES_<KEY>`` or the first ``threelines.toml`` that sets ``key`` (relative to that file)."""
    env = os.environ.get(f"THREELINES_{key.upper()}")
    if env:
        return Path(env)
    for file in config_files():
        if not file.is_file():
            continue
        import tomllib  # only when there is a file to read: most runs have none

        try:
            settings = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            hint = 'write e.g. layers = "jurisdiction/layers.yaml"'
            raise ManifestError(f"{file}: cannot read it ({exc}); {hint}") from None
        if key in settings:
            if not isinstance(settings[key], str) or not settings[key]:
                example = f'{key} = "jurisdiction/{key}.yaml"'
                raise ManifestError(f"{file}: {key} must be a path (a string), e.g. {example}")
            return file.parent / settings[key]
    return None


def resolve_layers(layers: str | Path | None) -> Path:
    """The manifest to use: ``layers`` if given, else the settings, else the sample (saying so on stderr).

    Parameters
    ----------
    layers : str or Path or None
        The manifest the user named (``--layers``).

    Returns
    -------
    Path
    """
    if layers:
        return Path(layers)
    found = _setting("layers")
    if found is not None:
        return found
    path = manifest_path()
    log.warning(
        "no --layers, THREELINES_LAYERS or threelines.toml: screening against the bundled %s of 南昌县; "
        "give your jurisdiction's layers with --layers",
        SAMPLE_MARK,
    )
    return path


def resolve_rules(rules: str | Path | None, manifest_rules: Path | None = None) -> Path:
    """The rule file to use: ``rules`` if given, else the manifest's own, else the settings, else the sample's."""
    if rules:
        return Path(rules)
    if manifest_rules is not None:
        return manifest_rules
    return _setting("rules") or rules_path()


def is_sample(path: str | Path) -> bool:
    """Whether a manifest is the bundled sample's."""
    try:
        return Path(path).resolve() == manifest_path().resolve()
    except ManifestError:
        return False
