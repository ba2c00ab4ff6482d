"""What a checked manifest holds: its layers' specs (:class:`LayerSpec`) and the :class:`Manifest` itself.

Made by :mod:`threelines.layers.manifest` (which checks a manifest's
document, each entry with :func:`threelines.layers.entries.check_entry`)
or read back from the kept copy (:func:`threelines.layers.kept.read_kept`),
and read by every step after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyproj import CRS

from threelines.layers.postgis import PostgisSource

#: What a layer can stand for (``raster``: a grid such as annual mean PM2.5, for zonal rules;
#: ``boundary``: the jurisdiction's outline, which the units should tile).
ROLES = ("redline", "unit", "quality", "cap", "raster", "boundary")

#: The three classes of environmental control unit.
UNIT_CLASSES = ("priority", "key", "general")

#: Class values as published, mapped to the three classes; extend per layer with ``class_map``.
DEFAULT_CLASS_MAP = {
    "priority": "priority", "优先保护单元": "priority", "优先保护": "priority", "1": "priority",
    "key": "key", "重点管控单元": "key", "重点管控": "key", "2": "key",
    "general": "general", "一般管控单元": "general", "一般管控": "general", "3": "general",
}  # fmt: skip


@dataclass(frozen=True)
class LayerSpec:
    """One manifest entry, checked against its file.

    Attributes
    ----------
    name, role : str
        The layer's name in rules, and what it stands for (one of ``ROLES``).
    path : Path
        The data file, resolved against the manifest's folder.
    layer : str or None
        The layer inside a multi-layer file (GeoPackage).
    id_field, name_field, class_field : str or None
        Attribute columns for the feature id, name and (units) class.
    class_map : dict
        Published class value -> ``priority`` / ``key`` / ``general``.
    crs : pyproj.CRS
        The file's CRS, or the manifest's override for a file without one.
    encoding : str or None
        Attribute encoding override (e.g. ``GBK`` for a shapefile without .cpg).
    fields : dict
        Attribute name -> numpy dtype name, as the file declares them (none for a raster).
    bounds : tuple of float
        The file's extent in its CRS.
    band : int
        The band a raster layer's rules read.
    source : PostgisSource or None
        For a layer in PostGIS: the connection and table or query (``path`` is then its label).
    geometry_column : str or None
        The geometry column of a PostGIS layer.
    """

    name: str
    role: str
    path: Path | str
    layer: str | None
    id_field: str | None
    name_field: str | None
    class_field: str | None
    class_map: dict[str, str]
    crs: CRS
    encoding: str | None
    fields: dict[str, str]
    bounds: tuple[float, float, float, float]
    band: int = 1
    source: PostgisSource | None = None
    geometry_column: str | None = None

    @property
    def location(self) -> str:
        """The file, or the database table, as messages name it."""
        return self.source.label if self.source is not None else str(self.path)


@dataclass(frozen=True)
class Manifest:
    """A checked manifest: its layers by name, the working CRS and the layers' lon/lat extent."""

    path: Path
    name: str
    layers: dict[str, LayerSpec]
    working_crs: CRS
    extent: tuple[float, float, float, float] = (-180.0, -90.0, 180.0, 90.0)
    line_widths: dict[str, float] = field(default_factory=dict)
    jurisdiction: dict[str, Any] | None = None
    rules: Path | None = None

    @property
    def jurisdiction_name(self) -> str:
        """The jurisdiction's name for messages: its ``jurisdiction.name``, else the manifest's name."""
        return str((self.jurisdiction or {}).get("name") or self.name)

    @property
    def unit_layer(self) -> LayerSpec | None:
        """The control-unit layer, if the manifest has one."""
        return next((s for s in self.layers.values() if s.role == "unit"), None)
