"""facegate edge agent: on-device recognition that publishes only anonymized events."""

__version__ = "0.1.0"
