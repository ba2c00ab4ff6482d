"""Where the bundled sample data lives (used when no --layers / --rules are given).

In a source checkout the sample is ``data/sample/`` at the top of the
repository; a built wheel carries a copy inside the package as
``threelines/sample/``.
"""

from __future__ import annotations

from pathlib import Path

from threelines.errors import ManifestError


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
