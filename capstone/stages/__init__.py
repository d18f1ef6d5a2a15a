"""The optional stages (attributes, depth, events, display, embed, identity) and their parameters.

Each stage is one class in its own module, registered by subclassing `Stage` (see
`capstone.stages.base`): its name, typed options, the stages it publishes after, and the
records it emits. Importing this package imports every stage module, so the registry
(`capstone.stages.base.REGISTRY`) is complete before `AnalysisParams` validates against it.
"""

from capstone.stages import (  # noqa: F401 (registers)
    attributes,
    depth,
    display,
    embed,
    events,
    identity,
)
