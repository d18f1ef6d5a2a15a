"""Enrichment stages (depth, events, display, embed, identity): the stage registry.

`STAGES` maps each optional stage's name to its class (`cls(ctx) -> Stage`); the pipeline
builds the enabled ones for every chunk, and calls their `publish` in `PUBLISH_ORDER` once
the chunks are stitched (identities first: events and trails are about identities). The
stages know nothing of the pipeline.
"""

from __future__ import annotations

from capstone.enrich.depth import DepthStage
from capstone.enrich.display import DisplayStage
from capstone.enrich.embed import EmbedStage
from capstone.enrich.events import EventsStage
from capstone.enrich.identity import IdentityStage
from capstone.stage import Stage

STAGES: dict[str, type[Stage]] = {
    "depth": DepthStage,
    "events": EventsStage,
    "display": DisplayStage,
    "embed": EmbedStage,
    "identity": IdentityStage,
}
PUBLISH_ORDER = ("identity", "events", "display", "depth", "embed")
