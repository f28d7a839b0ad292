"""This host's copy of the shared checkpoint topic, for the web app in multi-host mode
(``FACEGATE_AUDIT_MODE=topic``).

Every host's signer publishes its checkpoints to the one checkpoint topic, while a host's
own ``checkpoints.jsonl`` holds only what that host signed: a web app serving its file
would show a different set on each host. The mirror keeps the topic's records, verbatim
and in order, in a file beside the log (``checkpoints.topic.jsonl``), brought up to date
on a thread of its own every ``interval_s``: requests read the copy, never Kafka. A
record is kept as the topic has it, even one that does not decode: the copy is the
publication, and judging it is the verifier's job (as ``audit verify`` does with the
topic). When Kafka cannot be reached the copy stays as last read, and ``state()`` says
since when; the position (offset, bytes, records) is kept beside it, so a restart
serves the last copy at once and reads on from there.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self

from stream_processor.errors import BrokerError

log = logging.getLogger(__name__)

#: Bytes per read of the copy when it is served.
CHUNK = 64 * 1024


class CheckpointSource(Protocol):
    """The port: the checkpoint topic (``KafkaCheckpointSource`` in production)."""

    def read_from(self, offset: int) -> tuple[list[bytes], int]:
        """The records from ``offset`` to the topic's end now, and the offset after them;
        raises BrokerError when the topic cannot be read."""
        ...

    def close(self) -> None: ...


class KafkaCheckpointSource:
    """The single-partition checkpoint topic, through one consumer kept between reads
    (none after a failure: the next read connects again)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        auth: Mapping[str, Any] | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.topic = topic
        self._bootstrap = bootstrap
        self._auth = dict(auth or {})
        self._timeout_s = timeout_s
        self._consumer: Any = None

    def read_from(self, offset: int) -> tuple[list[bytes], int]:
        from kafka.errors import KafkaError

        try:
            return self._read(offset)
        except KafkaError as exc:
            self.close()
            raise BrokerError(f"cannot read {self.topic} at {self._bootstrap}: {exc}") from exc
        except BrokerError:
            self.close()
            raise

    def _read(self, offset: int) -> tuple[list[bytes], int]:
        from kafka import KafkaConsumer, TopicPartition

        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self._bootstrap,
                enable_auto_commit=False,
                client_id="facegate-checkpoint-mirror",
                request_timeout_ms=int(self._timeout_s * 1000) + 1000,
                **self._auth,
            )
            if not self._consumer.partitions_for_topic(self.topic):
                raise BrokerError(f"topic {self.topic} does not exist at {self._bootstrap}")
            self._consumer.assign([TopicPartition(self.topic, 0)])
        consumer, tp = self._consumer, TopicPartition(self.topic, 0)
        end = consumer.end_offsets([tp])[tp]
        if end <= offset:
            return [], offset
        consumer.seek(tp, offset)
        out: list[bytes] = []
        deadline = time.monotonic() + self._timeout_s
        while offset < end:
            if time.monotonic() > deadline:
                raise BrokerError(f"timed out reading {self.topic}")
            for r in consumer.poll(timeout_ms=500).get(tp, []):
                offset = r.offset + 1
                if r.value is not None:
                    out.append(r.value)
        return out, offset

    def close(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            consumer.close()


@dataclass(frozen=True)
class MirrorState:
    #: Records in the copy, and its length in bytes (whole lines only).
    records: int
    size: int
    #: When a read last reached the topic's end (ms); None: not since this process began.
    read_at_ms: int | None
    #: Since when reads fail (ms); None: the last read worked.
    failing_since_ms: int | None


class CheckpointMirror:
    def __init__(
        self,
        path: Path,
        source: CheckpointSource,
        interval_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._position_path = path.with_name(path.name + ".position")
        self._source = source
        self._interval_s = interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._offset, size, records = self._load_position()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as fh:  # a tail written before its position was: not counted
            fh.truncate(size)
        self._state = MirrorState(records, size, None, None)

    def _load_position(self) -> tuple[int, int, int]:
        try:
            offset, size, records = self._position_path.read_text().split()
            return int(offset), int(size), int(records)
        except (FileNotFoundError, ValueError):
            return 0, 0, 0

    def state(self) -> MirrorState:
        with self._lock:
            return self._state

    def refresh(self) -> MirrorState:
        """Read what the topic gained since the last read; on failure keep the copy."""
        now_ms = int(self._clock() * 1000)
        try:
            records, offset = self._source.read_from(self._offset)
        except BrokerError as exc:
            with self._lock:
                old = self._state
                since = old.failing_since_ms if old.failing_since_ms is not None else now_ms
                self._state = MirrorState(old.records, old.size, old.read_at_ms, since)
            if old.failing_since_ms is None:
                log.warning("checkpoint mirror: %s; serving the copy as last read", exc)
            return self.state()
        added = b"".join(r + b"\n" for r in records)
        with open(self.path, "ab") as fh:
            fh.write(added)
            fh.flush()
            os.fsync(fh.fileno())
        old = self.state()
        size, count = old.size + len(added), old.records + len(records)
        tmp = self._position_path.with_suffix(".tmp")
        tmp.write_text(f"{offset} {size} {count}\n")
        tmp.replace(self._position_path)
        self._offset = offset
        with self._lock:
            self._state = MirrorState(count, size, now_ms, None)
        return self.state()

    def chunks(self, size: int) -> Iterator[bytes]:
        """The first ``size`` bytes of the copy (a ``state().size``), in pieces."""
        with open(self.path, "rb") as fh:
            while size > 0:
                piece = fh.read(min(CHUNK, size))
                if not piece:
                    return
                size -= len(piece)
                yield piece

    def read(self) -> bytes:
        return b"".join(self.chunks(self.state().size))

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="checkpoint-mirror", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - the copy must outlive a bad round (disk full)
                log.exception("checkpoint mirror: a round failed")
            self._stop.wait(self._interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        self._source.close()
