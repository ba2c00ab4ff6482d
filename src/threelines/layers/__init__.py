"""The zoning layers: manifests, reading, the prepared cache, checks, PostGIS, push and zonal statistics."""
