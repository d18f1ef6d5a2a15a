"""Fine types: ImageNet labels (torchvision's names, spaces as underscores) that refine a
COCO class, e.g. car -> minivan, pickup, cab. The `attributes` stage keeps only these labels
of a track's best crop (`capstone.stages.attributes`); questions about a fine type fall back
to its classes when no track was recognised as it (`capstone.search.ask`).

>>> classes_of_type("minivan")
('car', 'truck')
>>> classes_of_type("teapot")
()
"""

from __future__ import annotations

FINE_TYPES: dict[str, frozenset[str]] = {
    "car": frozenset(
        {
            "ambulance",
            "beach_wagon",
            "cab",
            "convertible",
            "go-kart",
            "golfcart",
            "jeep",
            "limousine",
            "minibus",
            "minivan",
            "moving_van",
            "pickup",
            "police_van",
            "racer",
            "sports_car",
            "tow_truck",
        }
    ),
    "truck": frozenset(
        {
            "ambulance",
            "fire_engine",
            "forklift",
            "garbage_truck",
            "minivan",
            "moving_van",
            "pickup",
            "police_van",
            "tank",
            "tow_truck",
            "tractor",
            "trailer_truck",
        }
    ),
    "bus": frozenset({"minibus", "passenger_car", "school_bus", "trolleybus"}),
    "train": frozenset(
        {"bullet_train", "electric_locomotive", "passenger_car", "steam_locomotive", "streetcar"}
    ),
    "bicycle": frozenset({"bicycle-built-for-two", "mountain_bike", "tricycle", "unicycle"}),
    "motorcycle": frozenset({"moped", "motor_scooter"}),
    "boat": frozenset(
        {"canoe", "catamaran", "fireboat", "gondola", "lifeboat", "speedboat", "yawl"}
    ),
}


def classes_of_type(label: str) -> tuple[str, ...]:
    """The COCO classes `label` refines (sorted; empty for a label that refines none)."""
    return tuple(sorted(c for c, labels in FINE_TYPES.items() if label in labels))
