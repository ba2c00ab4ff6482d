"""The projects to screen: their attributes and footprints in the working CRS, and where each came from.

Reading an input (:mod:`threelines.input.footprint`) gives :class:`Projects`,
placed by :meth:`~threelines.input.drawn.DrawnProjects.place`; the engine
screens them (:func:`threelines.engine.screen.screen_projects`), and a batch
takes them a chunk at a time (:meth:`Projects.take`) and pickles them for its
worker processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from pyproj import CRS


@dataclass
class Projects:
    """Projects ready to screen: attributes and footprints in the working CRS.

    Attributes
    ----------
    source : str
        The file they were read from.
    attrs : list of dict
        Per project, every name of :data:`~threelines.input.attributes.ATTRIBUTES` (None where not given).
    geometry : numpy.ndarray of shapely geometries
        Footprints in the working CRS; lines already buffered by their width.
    area_m2 : numpy.ndarray
        Footprint areas in square metres (0 for points), on the ellipsoid (the
        equal-area working CRS); a point site with a radius: exactly pi r^2.
    problems : list of str
        One message per feature or file that could not be used (a
        :class:`~threelines.input.sources.Problem`, which says where it came from).
    crs : pyproj.CRS or None
        The CRS the footprints came in (WGS84 for web-map offsets), so that
        evidence can be written back in it; None when the sources differ.
    keys : list of tuple
        Per project, where it came from: ``(file, layer, feature)``, the file
        as given (a folder's or zip's member), its layer (None: its only one)
        and the feature's 0-based position in it. A batch keys its records by it.
    plane_area_m2 : numpy.ndarray or None
        Per project, the footprint's area in the plane of the projected CRS it
        came in (as the site drawing states it); NaN for longitude/latitude input.
    ordered : bool
        True when they already come in the order to screen them (a part of a
        file placed along a curve, see :func:`~threelines.input.footprint.read_projects_in_pieces`).
    columns : dict or None
        Per name of :data:`~threelines.input.attributes.ATTRIBUTES`, each
        project's value in ``attrs`` as an array of objects, when the reader
        checked them as columns (the rules read them so); None: read from ``attrs``.
    """

    source: str
    attrs: list[dict[str, Any]]
    geometry: np.ndarray
    area_m2: np.ndarray
    problems: list[str] = field(default_factory=list)
    crs: CRS | None = None
    keys: list[tuple[str, str | None, int]] = field(default_factory=list)
    plane_area_m2: np.ndarray | None = None
    ordered: bool = False
    columns: dict[str, np.ndarray] | None = field(default=None, repr=False, compare=False)
    _wkb: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.attrs)

    def wkb(self) -> np.ndarray:
        """Each footprint's WKB (as ``shapely.to_wkb`` writes it), written once: a batch hashes it, then pickles it."""
        if self._wkb is None:
            self._wkb = shapely.to_wkb(self.geometry) if len(self.geometry) else np.empty(0, dtype=object)
        return self._wkb

    def __getstate__(self) -> dict[str, Any]:
        """What is pickled (for a worker process): the footprints as WKB, written in one call, not one per footprint.

        The attribute columns are left out: pickling and unpickling them costs
        about what the worker saves by reading them.
        """
        # Footprints without an SRID (all of a file's) have the same WKB with or without it: the one written already.
        srid = (shapely.get_srid(self.geometry) > 0).any()  # a missing footprint's is -1
        wkb = shapely.to_wkb(self.geometry, include_srid=True) if srid or self._wkb is None else self._wkb
        return {**self.__dict__, "geometry": wkb, "_wkb": None, "columns": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, geometry=shapely.from_wkb(state["geometry"]))

    def take(self, positions) -> Projects:
        """The projects at some positions (for screening a large input in chunks)."""
        positions = list(positions)
        at = np.array(positions, dtype=int)  # indexes each column at once
        taken = Projects(
            source=self.source,
            attrs=[self.attrs[i] for i in positions],
            geometry=self.geometry[positions],
            area_m2=self.area_m2[positions],
            crs=self.crs,
            keys=[self.keys[i] for i in positions] if self.keys else [],
            plane_area_m2=None if self.plane_area_m2 is None else self.plane_area_m2[positions],
            columns=None if self.columns is None else {name: column[at] for name, column in self.columns.items()},
        )
        if self._wkb is not None:
            taken._wkb = self._wkb[positions]
        return taken
