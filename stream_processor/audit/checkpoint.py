"""Signed checkpoints: the operator's signature over the head of the log.

A checkpoint says "entry ``seq`` of log ``log_id`` has hash ``hash``", signed
with the operator's Ed25519 key over ``canonical(checkpoint without sig)``.
Because each entry's hash covers all entries before it, one valid checkpoint
vouches for the whole prefix: the operator can no longer rewrite, drop or
reorder anything up to it without the verifier noticing. Checkpoints go to
a JSONL file beside the log AND to a Kafka topic with unlimited retention, so
a copy exists outside the operator's file system.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import msgspec

from stream_processor.audit.canonical import canonical
from stream_processor.audit.keys import Keyring, OperatorKey, PublicKey
from stream_processor.audit.log import AuditSink, last_line
from stream_processor.audit.tlog import TreeCheckpointer
from stream_processor.errors import BrokerError

log = logging.getLogger(__name__)


class Checkpoint(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    v: Literal[1]
    log_id: str
    #: Position of the last entry covered, and its hash.
    seq: Annotated[int, msgspec.Meta(ge=0)]
    hash: str
    at_ms: int
    key_id: str
    sig: str

    def unsigned_doc(self) -> dict[str, Any]:
        doc = msgspec.to_builtins(self)
        assert isinstance(doc, dict)
        doc.pop("sig")
        return doc

    def line(self) -> bytes:
        doc = msgspec.to_builtins(self)
        return canonical(doc)

    def signature_valid(self, keys: PublicKey | Keyring) -> bool:
        public = Keyring.of(keys).get(self.key_id)
        return public is not None and public.verify(self.sig, canonical(self.unsigned_doc()))


_decoder = msgspec.json.Decoder(Checkpoint)


def decode_checkpoint(line: bytes) -> Checkpoint:
    return _decoder.decode(line)


def sign_checkpoint(key: OperatorKey, log_id: str, seq: int, hash_: str, at_ms: int) -> Checkpoint:
    draft = Checkpoint(
        v=1, log_id=log_id, seq=seq, hash=hash_, at_ms=at_ms, key_id=key.key_id, sig=""
    )
    return msgspec.structs.replace(draft, sig=key.sign(canonical(draft.unsigned_doc())))


class CheckpointPublisher(Protocol):
    def publish(self, checkpoint: Checkpoint) -> None:
        """Deliver durably (acks=all) or raise BrokerError."""
        ...


class KafkaCheckpointPublisher:
    """Publishes checkpoints to a Kafka topic, keyed by log id (kafka-python, acks=all)."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        timeout_s: float = 30.0,
        auth: Mapping[str, Any] | None = None,
    ) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        self.topic = topic
        self._timeout_s = timeout_s
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap,
                acks="all",
                client_id="facegate-audit",
                retries=5,
                **(auth or {}),
            )
        except KafkaError as exc:
            raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc

    def publish(self, checkpoint: Checkpoint) -> None:
        from kafka.errors import KafkaError

        try:
            future = self._producer.send(
                self.topic, key=checkpoint.log_id.encode(), value=checkpoint.line()
            )
            future.get(timeout=self._timeout_s)
        except KafkaError as exc:
            raise BrokerError(f"checkpoint not published to {self.topic}: {exc}") from exc

    def close(self) -> None:
        self._producer.close()


class CheckpointFile:
    """Checkpoints as JSONL (default ``<state>/audit/checkpoints.jsonl``), plus a
    marker of how far (in bytes) the file has reached the publisher. Both the
    newest checkpoint and the unpublished ones are read from the end, so the
    cost does not grow with the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._published_path = path.with_name(path.name + ".published")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)

    def read(self) -> list[Checkpoint]:
        with open(self.path, "rb") as fh:
            return [decode_checkpoint(raw.rstrip(b"\n")) for raw in fh if raw.endswith(b"\n")]

    def last(self) -> Checkpoint | None:
        with open(self.path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return None
            line = last_line(fh, size)
        return decode_checkpoint(line.rstrip(b"\n")) if line.endswith(b"\n") else None

    def append(self, checkpoint: Checkpoint) -> None:
        with open(self.path, "ab") as fh:
            fh.write(checkpoint.line() + b"\n")
            fh.flush()
            os.fsync(fh.fileno())

    def published_offset(self) -> int:
        try:
            return int(self._published_path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0

    def unpublished(self) -> list[tuple[int, Checkpoint]]:
        """Checkpoints not yet published, each with the file offset just after it."""
        out: list[tuple[int, Checkpoint]] = []
        with open(self.path, "rb") as fh:
            fh.seek(self.published_offset())
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break
                out.append((fh.tell(), decode_checkpoint(raw.rstrip(b"\n"))))
        return out

    def mark_published(self, offset: int) -> None:
        tmp = self._published_path.with_suffix(".tmp")
        tmp.write_text(f"{offset}\n")
        tmp.replace(self._published_path)


class Checkpointer:
    """Signs the head of the log when it moved, files it, and publishes what is unpublished.

    Run ``checkpoint()`` every N seconds (``facegate audit checkpointer``,
    ``FACEGATE_AUDIT_CHECKPOINT_INTERVAL_S``) or after an erasure completes.
    """

    def __init__(
        self,
        log_: AuditSink,
        key: OperatorKey,
        file: CheckpointFile,
        publisher: CheckpointPublisher | None,
        log_id: str,
        clock: Callable[[], float] = time.time,
        tree: TreeCheckpointer | None = None,
    ) -> None:
        self._log = log_
        self._key = key
        self._file = file
        self._publisher = publisher
        self._log_id = log_id
        self._clock = clock
        #: Also signs a C2SP checkpoint of the Merkle tree when it grew (tlog.py).
        self._tree = tree

    def checkpoint(self, force: bool = False) -> Checkpoint | None:
        """Returns the new checkpoint, or None when the head has not moved.

        Raises BrokerError when publishing failed; the checkpoint stays in the
        file and is published on the next call.
        """
        head = self._log.head()
        last = self._file.last()
        new: Checkpoint | None = None
        if head.seq >= 0 and (force or last is None or last.seq != head.seq):
            new = sign_checkpoint(
                self._key, self._log_id, head.seq, head.hash, int(self._clock() * 1000)
            )
            self._file.append(new)
            log.info("audit checkpoint at seq %d", head.seq)
        if self._tree is not None:
            self._tree.checkpoint()
        self.publish_pending()
        return new

    def publish_pending(self) -> int:
        """Publish, in order, what has not reached the publisher yet; returns how many."""
        if self._publisher is None:
            return 0
        pending = self._file.unpublished()
        for offset, cp in pending:
            self._publisher.publish(cp)
            self._file.mark_published(offset)
        return len(pending)


def read_checkpoint_topic(
    bootstrap: str, topic: str, timeout_s: float = 30.0, auth: Mapping[str, Any] | None = None
) -> list[bytes]:
    """Every checkpoint record of ``topic``, oldest first (the independent copy);
    ``auth``: the reader's kafka-python login (runtime/kafka_auth)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            client_id="facegate-audit-verify",
            consumer_timeout_ms=int(timeout_s * 1000),
            **(auth or {}),
        )
    except KafkaError as exc:
        raise BrokerError(f"cannot reach Kafka at {bootstrap}: {exc}") from exc
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise BrokerError(f"topic {topic} does not exist at {bootstrap}")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        out: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise BrokerError(f"timed out reading {topic}")
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(r.value + b"\n" for r in records if r.value is not None)
        return out
    finally:
        consumer.close()
