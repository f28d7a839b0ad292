"""Re-export for two call sites still being edited elsewhere; the request lives in
``stream_processor.erasure.progress`` (remove this module once they import it there)."""

from stream_processor.erasure.progress import ErasureRequest

__all__ = ["ErasureRequest"]
