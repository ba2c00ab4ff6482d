"""Domain exceptions.

Every error a user can cause is a :class:`ThreelinesError`. The library raises
them with a message that names the file, feature or rule and says how to fix
it; the CLI turns them into one line on stderr and exit code 2.
"""

from __future__ import annotations


def feature_at(position: int) -> str:
    """How a message names a feature by its position in its file or collection.

    0-based, as a batch record's ``feature`` is, and saying so: a reader
    counting from 1 would otherwise look at the wrong feature.
    """
    return f"feature {position} (0-based)"


class ThreelinesError(Exception):
    """Root of every error caused by the user's input."""


class ManifestError(ThreelinesError, ValueError):
    """The layer manifest, or a layer it names, is unusable."""


class RuleError(ThreelinesError, ValueError):
    """A rule file is malformed: schema, expression or reference."""


class FootprintError(ThreelinesError, ValueError):
    """A project footprint file, feature or attribute is unusable."""


class CRSError(ThreelinesError, ValueError):
    """A coordinate reference system is missing or cannot be understood."""


class IndustryCodeError(ThreelinesError, ValueError):
    """An industry code is not a GB/T 4754-2017 code."""


class OutputError(ThreelinesError, OSError):
    """An output cannot be written (exists without --overwrite, or unwritable)."""


class ReportError(ThreelinesError, ValueError):
    """A report to verify is unreadable, has no provenance, or its input cannot be read again."""
