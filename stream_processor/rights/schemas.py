"""JSON Schemas of the documents residents and verifiers receive, exported to docs/schema/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from stream_processor.audit.checkpoint import Checkpoint
from stream_processor.audit.entries import AuditEntry
from stream_processor.rights.export import SubjectExport
from stream_processor.rights.receipts import ErasureReceipt


def schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {
        "audit-entry-v1.json": msgspec.json.schema(AuditEntry),
        "audit-checkpoint-v1.json": msgspec.json.schema(Checkpoint),
        "erasure-receipt-v1.json": ErasureReceipt.model_json_schema(),
        "subject-export-v1.json": SubjectExport.model_json_schema(),
    }
    for name, schema in out.items():
        schema["$id"] = f"https://facegate.invalid/schema/{name}"
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = folder / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written
