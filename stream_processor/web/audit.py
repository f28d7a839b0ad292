"""/audit/: the published audit log, its checkpoints (JSON and C2SP), proofs and cosignatures.

What a resident, a court, a notary or a witness downloads to check the log
without trusting the operator's database (docs/rights.md):

    GET  /audit/log.jsonl | checkpoints.jsonl | operator-public.pem   the files
    GET  /audit/checkpoint[?size=N]        the latest (or size-N) signed checkpoint,
                                           with every cosignature the log holds
    GET  /audit/proof/inclusion?index=&size=     RFC 6962 inclusion proof (JSON)
    GET  /audit/proof/consistency?old=&new=      RFC 6962 consistency proof (JSON)
    GET  /audit/key-rotations              the key_rotated entries, with their index
    POST /audit/cosignature                a witness posts its cosigned checkpoint

In multi-host mode (``FACEGATE_AUDIT_MODE=topic``) ``checkpoints.jsonl`` is this host's
copy of the shared checkpoint topic (``audit/checkpoint_mirror.py``), the same on every
host; while the topic cannot be read the copy is served as last read, marked stale.

Only cosignatures under a configured witness key (``FACEGATE_AUDIT_WITNESS_KEYS``)
are accepted. Nothing served holds a pseudonym or resident id.
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from stream_processor.audit.checkpoint_mirror import CheckpointMirror
from stream_processor.audit.entries import EntryType, decode_entry
from stream_processor.audit.errors import AuditError
from stream_processor.audit.note import Note, NoteError, Verifier, valid_signatures
from stream_processor.audit.settings import AuditPaths, AuditSettings
from stream_processor.audit.tlog import CheckpointStore, TreeHead
from stream_processor.audit.tree import StoredTree
from stream_processor.web.deps import DEPS

_FILES = {
    "log.jsonl": ("log", "application/x-ndjson"),
    "checkpoints.jsonl": ("checkpoints", "application/x-ndjson"),
    "operator-public.pem": ("public_key", "application/x-pem-file"),
}
_NO_CACHE = {"Cache-Control": "no-cache, max-age=0"}
#: Each line costs an Ed25519 verification per witness key: a post may carry this many.
_MAX_SIGNATURES = 16


@dataclass
class Publication:
    """The tree, the checkpoint store and the accepted witness keys of one web process."""

    paths: AuditPaths
    witnesses: list[Verifier]
    tree: StoredTree = field(init=False)
    store: CheckpointStore = field(init=False)
    #: Topic mode: the shared checkpoints, served for this host's file (set at start-up).
    mirror: CheckpointMirror | None = None
    _rotations: list[dict[str, Any]] = field(default_factory=list)
    _scanned: tuple[int, int] = (0, 0)  # (log bytes, entries) already scanned for rotations
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.tree = StoredTree(self.paths.tree, self.paths.log)
        self.store = CheckpointStore(self.paths.tree_checkpoints)

    def rotations(self) -> list[dict[str, Any]]:
        """key_rotated entries with their index, scanning only what the log gained."""
        with self._lock:
            offset, index = self._scanned
            with open(self.paths.log, "rb") as fh:
                fh.seek(offset)
                for raw in fh:
                    if not raw.endswith(b"\n"):
                        break
                    offset += len(raw)
                    if b'"key_rotated"' in raw:
                        entry = decode_entry(raw.rstrip(b"\n"))
                        if entry.type == EntryType.KEY_ROTATED:
                            self._rotations.append({"index": index, "entry": raw.decode()[:-1]})
                    index += 1
            self._scanned = (offset, index)
            return list(self._rotations)


PUB: web.AppKey[Publication] = web.AppKey("facegate_audit_publication", Publication)


async def published(request: web.Request) -> web.StreamResponse:
    paths = request.app[DEPS].audit_paths
    name = request.match_info["name"]
    if paths is None or name not in _FILES:
        raise web.HTTPNotFound()
    attr, ctype = _FILES[name]
    mirror = request.app[PUB].mirror if PUB in request.app else None
    if attr == "checkpoints" and mirror is not None:
        return await _mirrored(request, mirror, ctype)
    path = getattr(paths, attr)
    if not path.exists():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": ctype, **_NO_CACHE})


async def _mirrored(
    request: web.Request, mirror: CheckpointMirror, ctype: str
) -> web.StreamResponse:
    """The copy of the checkpoint topic; stale (the topic unread since a time, or not
    read yet) is said in headers, and an empty copy never read is a 503."""
    state = mirror.state()
    headers = {**_NO_CACHE, "Content-Type": ctype, "X-Facegate-Checkpoints": "kafka"}
    if state.read_at_ms is not None:
        headers["X-Facegate-Checkpoints-Read-At-Ms"] = str(state.read_at_ms)
    if state.failing_since_ms is not None or state.read_at_ms is None:
        since = state.failing_since_ms
        headers["X-Facegate-Checkpoints-Stale"] = (
            f"unreadable-since-ms={since}" if since is not None else "not-read-yet"
        )
        headers["Warning"] = '110 - "checkpoints as last read: the topic cannot be read now"'
        if state.read_at_ms is None and state.size == 0:
            raise web.HTTPServiceUnavailable(
                text="the checkpoint topic has not been read yet\n",
                headers={**headers, "Retry-After": "5", "Content-Type": "text/plain"},
            )
    resp = web.StreamResponse(headers=headers)
    resp.content_length = state.size
    await resp.prepare(request)
    pieces = mirror.chunks(state.size)
    while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
        await resp.write(piece)
    await resp.write_eof()
    return resp


def _pub(request: web.Request) -> Publication:
    if PUB not in request.app:
        raise web.HTTPNotFound(text="this site does not publish its audit log\n")
    return request.app[PUB]


#: A tree size or index in a query: ASCII digits (``str.isdigit`` takes "²", which ``int``
#: refuses), at most 18 of them (below SQLite's 2**63).
_COUNT = re.compile(r"[0-9]{1,18}")
#: The largest tree size the log's database holds (SQLite INTEGER).
MAX_TREE_SIZE = 2**63 - 1


def _int(request: web.Request, name: str) -> int:
    raw = request.query.get(name, "")
    if _COUNT.fullmatch(raw) is None:
        raise web.HTTPBadRequest(text=f"{name} must be a non-negative integer below 10**18\n")
    return int(raw)


async def _tree_at(pub: Publication, size: int) -> StoredTree:
    if size > pub.tree.size:
        await asyncio.to_thread(pub.tree.sync)
    if size > pub.tree.size:
        raise web.HTTPBadRequest(text=f"the log has {pub.tree.size} entries, not {size}\n")
    return pub.tree


async def checkpoint(request: web.Request) -> web.Response:
    pub = _pub(request)
    if "size" in request.query:
        note = await asyncio.to_thread(pub.store.get, _int(request, "size"))
    else:
        note = await asyncio.to_thread(pub.store.latest)
    if note is None:
        raise web.HTTPNotFound(text="no checkpoint\n")
    return web.Response(body=note.encode(), content_type="text/plain", headers=_NO_CACHE)


def _b64(proof: list[bytes]) -> list[str]:
    return [base64.b64encode(p).decode() for p in proof]


async def inclusion(request: web.Request) -> web.Response:
    pub = _pub(request)
    index, size = _int(request, "index"), _int(request, "size")
    if index >= size:
        raise web.HTTPBadRequest(text="index must be below size\n")
    tree = await _tree_at(pub, size)
    proof = await asyncio.to_thread(tree.inclusion, index, size)
    doc = {"index": index, "size": size, "leaf_hash": _b64([tree.leaf(index)])[0]}
    return web.json_response({**doc, "proof": _b64(proof)}, headers=_NO_CACHE)


async def consistency(request: web.Request) -> web.Response:
    pub = _pub(request)
    old, new = _int(request, "old"), _int(request, "new")
    if old > new:
        raise web.HTTPBadRequest(text="old must not exceed new\n")
    tree = await _tree_at(pub, new)
    proof = await asyncio.to_thread(tree.consistency, old, new)
    return web.json_response({"old": old, "new": new, "proof": _b64(proof)}, headers=_NO_CACHE)


async def key_rotations(request: web.Request) -> web.Response:
    pub = _pub(request)
    if not pub.paths.log.exists():
        return web.json_response([], headers=_NO_CACHE)
    return web.json_response(await asyncio.to_thread(pub.rotations), headers=_NO_CACHE)


async def cosignature(request: web.Request) -> web.Response:
    """A witness returns the checkpoint with its cosignature line(s)."""
    pub = _pub(request)
    try:
        note = Note.parse(await request.text())
        head = TreeHead.parse(note.text)
    except (NoteError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text=f"not a cosigned checkpoint: {exc}\n") from None
    if len(note.signatures) > _MAX_SIGNATURES:
        raise web.HTTPBadRequest(text=f"at most {_MAX_SIGNATURES} signature lines\n")
    if head.size > MAX_TREE_SIZE:
        raise web.HTTPNotFound(text="this log signed no such checkpoint\n")
    stored = await asyncio.to_thread(pub.store.get, head.size)
    if stored is None or stored.text != note.text:
        raise web.HTTPNotFound(text="this log signed no such checkpoint\n")
    valid = valid_signatures(note, pub.witnesses)
    if not valid:
        raise web.HTTPForbidden(text="no cosignature under a witness key this log accepts\n")
    sigs = [s for s in note.signatures if any(v.verify(note.text, s) is not None for v, _ in valid)]
    await asyncio.to_thread(pub.store.add_cosignatures, head.size, sigs)
    return web.Response(text=f"stored {len(sigs)} cosignature(s)\n")


def add_routes(app: web.Application, witness_keys: list[str] | None = None) -> None:
    """``witness_keys`` default: ``FACEGATE_AUDIT_WITNESS_KEYS``."""
    paths = app[DEPS].audit_paths
    if paths is not None:
        keys = AuditSettings().witness_keys if witness_keys is None else witness_keys
        try:
            app[PUB] = Publication(paths, [Verifier.parse(k) for k in keys])
        except (AuditError, OSError) as exc:
            raise AuditError(f"cannot publish the audit log from {paths.root}: {exc}") from exc
        app.on_cleanup.append(_close)
        if AuditSettings().mode == "topic":
            app.cleanup_ctx.append(_follow_checkpoints)
    app.router.add_get("/audit/checkpoint", checkpoint)
    app.router.add_get("/audit/key-rotations", key_rotations)
    app.router.add_get("/audit/proof/inclusion", inclusion)
    app.router.add_get("/audit/proof/consistency", consistency)
    app.router.add_post("/audit/cosignature", cosignature)
    app.router.add_get("/audit/{name}", published)


async def _follow_checkpoints(app: web.Application) -> AsyncIterator[None]:
    from stream_processor.audit.wiring import checkpoint_mirror

    pub = app[PUB]
    pub.mirror = checkpoint_mirror(pub.paths).start()
    try:
        yield
    finally:
        await asyncio.to_thread(pub.mirror.stop)


async def _close(app: web.Application) -> None:
    app[PUB].store.close()
