"""The demo world: `generate` (build.py) writes it; the planted truths (docs/demo-data.md) are world.py's constants.

world.py (truths and parameters) ← columns.py (numpy → Arrow → DuckDB) ← text.py, customers.py, marketing.py
(the generators) ← build.py (`generate`, which runs them in a fixed order: above `build.BLOCK` customers, block by
block into staging tables swapped in at the end, so memory follows the block, not the population).
"""

from tools.warehouse.demo.build import generate
from tools.warehouse.demo.world import (
    ANOMALY_CHANNEL,
    ANOMALY_DAY,
    CHANNELS,
    CHURN_DRIVERS,
    END,
    EXPERIMENT_LIFT,
    EXPERIMENT_NULL,
    JOURNEY_EFFECTS,
    SATURATED_CHANNEL,
    SEGMENTS,
    SPIKE_WEEK,
    START,
)

__all__ = ["ANOMALY_CHANNEL", "ANOMALY_DAY", "CHANNELS", "CHURN_DRIVERS", "END", "EXPERIMENT_LIFT", "EXPERIMENT_NULL",
           "JOURNEY_EFFECTS", "SATURATED_CHANNEL", "SEGMENTS", "SPIKE_WEEK", "START", "generate"]
