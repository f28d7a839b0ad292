from tests.monitoring.prom import prom

__all__ = ["prom"]
