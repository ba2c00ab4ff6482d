"""What a process that screens many chunks can make before its first chunk, and keep.

A batch worker reads its layers before the first chunk comes; the first
chunk would then still pay once for the rest of what every chunk shares:
the transformers to the rasters' CRSs and the layers' extent box (PROJ's
database opened and searched, tens of milliseconds), the rasters' grids, the
layers' spatial indexes, and what is derived from a layer's features alone
(kept with the layer: the answers of the conditions that read only the
feature, the zones' and units' codes). :func:`warm_up` makes them ahead, each where the
chunks look for it, so that the chunks find them made. Nothing is screened,
and what cannot be made is left for the first chunk to make (and report).
"""

from __future__ import annotations

import logging
from pathlib import Path

from threelines.layers.read import LayerData
from threelines.layers.spec import Manifest
from threelines.rules import RuleSet

log = logging.getLogger(__name__)


def warm_up(manifest: Manifest, rules: RuleSet, layers: dict[str, LayerData], cache_dir: Path | None) -> None:
    """Make ahead what the chunks screened against ``manifest`` and ``rules`` share, as they would make it.

    Parameters
    ----------
    manifest : Manifest
    rules : RuleSet
    layers : dict
        The vector layers read whole, by name (those missing are skipped).
    cache_dir : Path, optional
        The cache folder that keeps the rasters' grids.
    """
    from threelines.engine.decisions.capacity import zone_codes
    from threelines.engine.decisions.layer import feature_codes
    from threelines.engine.pairs import far_features, unit_texts
    from threelines.engine.screen import extent_box
    from threelines.input.crs import kept_transformer
    from threelines.layers.rasters import open_raster

    steps = [("the layers' extent box", lambda: extent_box(manifest))]
    for name in dict.fromkeys(rule.layer for rule in rules.rules if rule.test == "zonal"):
        spec = manifest.layers[name]
        steps.append(
            (f"layer {name!r}'s transformer", lambda spec=spec: kept_transformer(manifest.working_crs, spec.crs))
        )
        steps.append((f"layer {name!r}'s grid", lambda spec=spec: open_raster(spec, cache_dir)))
    for name, layer in layers.items():
        steps.append((f"layer {name!r}'s spatial index", lambda layer=layer: layer.tree))  # every chunk queries it
        mine = [rule for rule in rules.rules if rule.layer == name]
        far = [rule.condition for rule in mine if rule.reach_m > 0]
        if far:  # as :func:`~threelines.engine.pairs.layer_pairs` asks, whatever the chunk
            steps.append((f"layer {name!r}'s far features", lambda layer=layer, far=far: far_features(layer, far)))
        if any(rule.test == "capacity" for rule in mine):
            steps.append((f"layer {name!r}'s zone codes", lambda layer=layer: zone_codes(layer)))
        if manifest.unit_layer is not None and name == manifest.unit_layer.name:
            steps.append((f"layer {name!r}'s unit texts", lambda layer=layer: unit_texts(layer)))
        for expr in (e for rule in mine for e in (rule.condition, rule.attains) if e is not None):
            if "feature" in expr.reads.names:  # as a decision's conditions read it
                codes = lambda layer=layer, reads=expr.reads: feature_codes(layer, reads)  # noqa: E731
                steps.append((f"layer {name!r}'s feature codes", codes))
    for what, step in steps:
        try:
            step()
        except Exception:  # the first chunk makes it again, and reports it per project
            log.debug("%s could not be made ahead", what, exc_info=True)
