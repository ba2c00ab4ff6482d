"""The stated limits on everything that comes from outside.

A footprint, an upload, a rule file, a manifest and a report may all be
hostile. Each bound below is hit with one clear line naming the limit; the
table in docs/limits.md lists them with these values. Keep every new limit
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
#: Pieces one geometry's edges may be cut into before reprojection (a 5,000 km boundary needs 5,000);
#: a longer geometry is left uncut, and one that long is no footprint.
MAX_DENSIFY_PIECES = 1_000_000
#: Members smaller than this, bytes, are not held to the ratio (a small file of repeated text does no harm).
MIN_RATIO_CHECK_BYTES = 1024**2


# -- Rule files and manifests ---------------------------------------------------------------------

#: Nesting of YAML collections in a rule file or a manifest.
MAX_YAML_DEPTH = 64
#: Size of a rule file or a manifest, bytes.
MAX_YAML_BYTES = 10 * 1024**2
#: Longest rule expression, characters. cel-rust overflows the stack (and kills the
#: process) on very long flat expressions (upstream cel-rust issue 212); real conditions are far shorter.
MAX_EXPRESSION_CHARS = 1000
#: Largest distance or area a rule may name (1,000 km, or 1,000 km2 in m2): beyond is a typo.
MAX_DISTANCE_M = 1e6
#: Brackets, parentheses and braces nested in one expression.
MAX_EXPRESSION_NESTING = 32
#: Comprehensions (all, exists, exists_one, map, filter) nested in one expression.
MAX_COMPREHENSION_DEPTH = 2
#: Iterations an expression's comprehensions may make, counted at load from the sizes of
#: literal lists and maps (a list or map from the data counts as COMPREHENSION_UNKNOWN_SIZE).
MAX_COMPREHENSION_COST = 10_000
#: The size a comprehension's range is assumed to have when it comes from the data.
COMPREHENSION_UNKNOWN_SIZE = 100
#: Width of a message placeholder's format spec ({x:>20}), characters.
MAX_FORMAT_WIDTH = 100
#: Precision of a message placeholder's format spec ({x:.3f}), digits.
MAX_FORMAT_PRECISION = 12
#: Share of the projects screened on which a rule may fail to evaluate before it is reported
#: (once, with its id, the count and the first error); reported from RULE_FAILURE_MIN failures.
RULE_FAILURE_SHARE = 0.01
RULE_FAILURE_MIN = 1
#: Time a PostGIS statement may run before the server cancels it, s (statement_timeout_s in a
#: manifest's source block overrides it for that layer).
PG_STATEMENT_TIMEOUT_S = 60.0


# -- Reports given to verify ----------------------------------------------------------------------

#: Nesting of JSON arrays and objects in a report.
MAX_JSON_DEPTH = 256
#: Size of a report file (JSON, JSON Lines, the HTML that embeds it, a batch's results.jsonl), bytes.
MAX_REPORT_BYTES = 512 * 1024**2


# -- Batch runs -----------------------------------------------------------------------------------

#: Project ids carried by several projects that are named one by one on stderr (the rest are counted).
SHARED_IDS_SHOWN = 10
#: A batch's errors (unreadable inputs and features, projects that could not be screened) written one by one on
#: stderr, even with -q (the rest are counted; every one is in results.jsonl).
BATCH_ERRORS_SHOWN = 10
#: Bytes of a report's file name made from its project's file and id (a short hash keeps names apart).
MAX_REPORT_NAME_BYTES = 120
#: Cells of a raster band kept in the cache folder as a grid of floats (8 bytes a cell), so that a run reads it
#: without GDAL; a larger band is read from its file each run.
MAX_CACHED_GRID_CELLS = 1_000_000
#: Files (or sets of a shapefile's files) whose sha256 the cache folder remembers by their identity, the most
#: recently used; the others are hashed again when they are next used.
MAX_HASH_MEMO = 1_000
#: Bytes of that memo read (1,000 entries of paths of usual length take under 1 MiB); a larger one is ignored, and
#: the files are hashed again.
MAX_HASH_MEMO_BYTES = 16 * 1024**2


# -- Published packages (threelines init) -----------------------------------------------------------

#: Characters of one prose cell (a unit's 空间布局约束, ...); real cells run to a few thousand.
MAX_PROSE_CHARS = 50_000
#: Clauses one prose cell may split into.
MAX_CLAUSES_PER_CELL = 500
#: Files a package (folder or zip) may hold.
MAX_PACKAGE_MEMBERS = 10_000
#: Total size of a package's files, bytes (a zip: uncompressed).
MAX_PACKAGE_BYTES = 4 * 1024**3
#: Features of one layer of a package.
MAX_PACKAGE_FEATURES = 1_000_000
#: Rows of one list table (XLSX / CSV) of a package.
MAX_LIST_ROWS = 200_000
#: Rows of a jurisdiction's own industry keyword table.
MAX_KEYWORDS = 10_000


# -- The service (threelines serve) ---------------------------------------------------------------

#: Body of one request (an upload or a GeoJSON document), bytes; --max-upload overrides it.
MAX_UPLOAD_BYTES = 50 * 1024**2
#: Total uncompressed size of an uploaded archive's members (zip, kmz), bytes.
MAX_UPLOAD_ARCHIVE_BYTES = 500 * 1024**2
#: Members of an uploaded archive.
MAX_UPLOAD_ARCHIVE_MEMBERS = 1_000
#: Vertices of one project's footprint.
MAX_VERTICES_PER_FOOTPRINT = 100_000
#: Projects screened in one request.
MAX_PROJECTS_PER_REQUEST = 1_000
#: Time one request may take before it is answered 503, s.
REQUEST_TIME_LIMIT_S = 60.0
#: Features of one layer returned for display by GET /v1/layers/{name}.
MAX_LAYER_FEATURES_SHOWN = 50_000
#: Characters of an industry search query.
MAX_QUERY_CHARS = 100
