"""The erasure worker's blocking parts and the one thread they are used from.

Stores, SQLite, the audit file and kafka-python run in ONE thread of their own: the
SQLite connections are made in it and never leave it. The ledger index has a second
thread, so it can run beside a store deletion. After an outage the parts are built
afresh on the next use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from stream_processor.erasure.deps import Deps
from stream_processor.quarantine import Failure, classify

log = logging.getLogger(__name__)

T = TypeVar("T")


class WorkerThread:
    def __init__(self, deps_factory: Callable[[], Deps]) -> None:
        self._factory = deps_factory
        self._deps: Deps | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="erasure")
        self._ledger_pool = ThreadPoolExecutor(1, thread_name_prefix="erasure-ledger")
        self._stale = False

    def _d(self) -> Deps:
        if self._deps is None:
            self._deps = self._factory()
        return self._deps

    async def run(self, fn: Callable[[Deps], T]) -> T:
        loop = asyncio.get_running_loop()
        if self._stale:
            await loop.run_in_executor(self._ledger_pool, lambda: None)  # let it finish
            await loop.run_in_executor(self._pool, self._drop)
        try:
            return await loop.run_in_executor(self._pool, lambda: fn(self._d()))
        except Exception as exc:
            # A store or broker connection that failed may be dead for good (a PostgreSQL
            # restart): the next try builds the parts afresh.
            if classify(exc) is Failure.OUTAGE:
                self._stale = True
            raise

    def _drop(self) -> None:
        deps, self._deps, self._stale = self._deps, None, False
        if deps is None:
            return
        try:
            deps.close()
        except Exception as exc:  # noqa: BLE001 - closing what already failed
            log.warning("erasure worker: closing after an outage failed (%s)", type(exc).__name__)

    async def run_ledger(self, fn: Callable[[Deps], T]) -> T:
        """The ledger index has a thread of its own (it runs beside a store deletion)."""
        # Not through the store's thread: that one may be busy deleting right now.
        deps = self._deps if self._deps is not None else await self.run(lambda d: d)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._ledger_pool, lambda: fn(deps))

    async def close(self) -> None:
        if self._deps is not None:
            await self.run(lambda d: d.close())
        self._pool.shutdown(wait=True)
        self._ledger_pool.shutdown(wait=True)


__all__ = ["WorkerThread"]
