"""Published 三线一单 data packages: recognise their layers and lists, and write a ready jurisdiction.

:func:`threelines.package.build.init_package` is what ``threelines init`` runs.
"""

from __future__ import annotations

from threelines.errors import ThreelinesError


class PackageError(ThreelinesError, ValueError):
    """A published data package is ambiguous or unusable; nothing has been written."""
