"""The real brokers of a local facegate stack, started and stopped by the project."""
