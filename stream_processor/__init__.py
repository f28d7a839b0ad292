"""facegate cloud side: bridge MQTT → Kafka, enforce policy, store, serve."""

__version__ = "0.1.0"
