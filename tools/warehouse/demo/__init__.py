"""The demo world: `generate` writes it; the planted truths (docs/demo-data.md) are the constants below."""

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
    generate,
)

__all__ = ["ANOMALY_CHANNEL", "ANOMALY_DAY", "CHANNELS", "CHURN_DRIVERS", "END", "EXPERIMENT_LIFT", "EXPERIMENT_NULL",
           "JOURNEY_EFFECTS", "SATURATED_CHANNEL", "SEGMENTS", "SPIKE_WEEK", "START", "generate"]
