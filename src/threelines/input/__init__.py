"""Reading project footprints: files, corner tables, encodings and coordinate systems."""
