"""Enrichment stages (depth, events, display, embed, identity): the stage registry.

`STAGES` maps each optional stage's name to its class (`cls(ctx) -> Stage`); the pipeline
builds the enabled ones for every chunk, and calls their `publish` in `PUBLISH_ORDER` once
the chunks are stitched (identities first: events and trails are about identities). The
stages know nothing of the pipeline.
"""

from __future__ import annotations

from capstone.stages.base import Stage
from capstone.stages.depth import DepthStage
from capstone.stages.display import DisplayStage
from capstone.stages.embed import EmbedStage
from capstone.stages.events import EventsStage
from capstone.stages.identity import IdentityStage

STAGES: dict[str, type[Stage]] = {
    "depth": DepthStage,
    "events": EventsStage,
    "display": DisplayStage,
    "embed": EmbedStage,
    "identity": IdentityStage,
}
PUBLISH_ORDER = ("identity", "events", "display", "depth", "embed")
