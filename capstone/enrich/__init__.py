"""Enrichment stages (depth, events, display, embed, identity).

Each stage module calls `capstone.pipeline.register_stage` when imported here.
"""

from capstone.enrich import depth, display, embed, events, identity  # noqa: F401
