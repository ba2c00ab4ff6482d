"""The screening engine: footprints against layers, measured, decided and turned into verdicts."""
