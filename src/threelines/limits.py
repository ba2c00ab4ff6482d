"""The stated limits on everything that comes from outside.

A footprint, an upload, a rule file, a manifest and a report may all be
hostile. Each bound below is hit with one clear line naming the limit; the
README's table of limits lists them with these values. Keep every new limit
here, in the section of what it bounds, so that the table and the code
cannot drift apart.
"""

from __future__ import annotations

# -- Project attributes: plausible bounds; a value outside them is that project's error ---------

#: A point site's radius, m.
MAX_RADIUS_M = 50_000.0
#: A line footprint's width, m.
MAX_WIDTH_M = 1_000.0
#: A declared annual emission of one pollutant, t/a (the largest coal plants emit ~1e5 t/a of SO2).
MAX_EMISSION_T = 1_000_000.0
#: A declared annual water use, m3/a (10 km3/a, more than any one project draws).
MAX_WATER_M3 = 1e10


# -- Input files and archives (zip, kmz, folders) -----------------------------------------------

#: Members of one archive.
MAX_ARCHIVE_MEMBERS = 10_000
#: Total uncompressed size of one archive's members, bytes.
MAX_ARCHIVE_BYTES = 2 * 1024**3
#: Uncompressed / compressed size of one member (zip bombs reach 1000 and more).
MAX_COMPRESSION_RATIO = 200
#: Members smaller than this, bytes, are not held to the ratio (a small file of repeated text does no harm).
MIN_RATIO_CHECK_BYTES = 1024**2


# -- Rule files and manifests ---------------------------------------------------------------------

#: Nesting of YAML collections in a rule file or a manifest.
MAX_YAML_DEPTH = 64


# -- Reports given to verify ----------------------------------------------------------------------

#: Nesting of JSON arrays and objects in a report.
MAX_JSON_DEPTH = 256


# -- Batch runs -----------------------------------------------------------------------------------
