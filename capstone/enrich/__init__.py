"""Enrichment stages (depth, events, display, embed, identity): the stage registry.

`STAGES` maps each optional stage's name to its factory (`factory(ctx) -> Stage`); the
pipeline builds the enabled ones from it. The stages know nothing of the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable

from capstone.enrich.depth import DepthStage
from capstone.enrich.display import DisplayStage
from capstone.enrich.embed import EmbedStage
from capstone.enrich.events import EventsStage
from capstone.enrich.identity import IdentityStage
from capstone.stage import RunContext, Stage

STAGES: dict[str, Callable[[RunContext], Stage]] = {
    "depth": DepthStage,
    "events": EventsStage,
    "display": DisplayStage,
    "embed": EmbedStage,
    "identity": IdentityStage,
}
