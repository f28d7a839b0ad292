"""``facegate policy validate-config|apply|show|history``: retention and purposes as data.

``apply`` writes a new version to the compacted policies topic (key ``tenant``
for the version in force, ``tenant@NNNNNNNN`` for history); running workers
pick it up within seconds and the next sweep deletes what it newly expires.
It also sets the raw and dead-letter topics' retention from the policies.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
import yaml

from stream_processor.cli.options import json_option
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings, Topics

if TYPE_CHECKING:
    from stream_processor.policy.document import PolicyDocument
    from stream_processor.policy.retention import CompiledPolicy, PolicyVersion


def load_policy(path: Path) -> PolicyDocument:
    """Read and validate a policy file; every problem on one line, naming the file."""
    from pydantic import ValidationError

    from stream_processor.policy.document import parse_policy_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{path}: cannot read the policy: {exc}") from None
    try:
        return parse_policy_yaml(text)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '(document)'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise click.ClickException(
            f"{path}: invalid policy ({exc.error_count()} errors): " + "; ".join(problems)
        ) from None
    except (ValueError, yaml.YAMLError) as exc:
        raise click.ClickException(f"{path}: invalid policy: {exc}") from None


def _versions(tenant: str | None = None) -> tuple[dict[str, bytes], dict[str, list[bytes]]]:
    """Current policy bytes per tenant, and every version per tenant (oldest first)."""
    from stream_processor.policy.keys import is_history, is_internal, tenant_of
    from stream_processor.runtime.ledger_client import read_ledger

    current: dict[str, bytes] = {}
    history: dict[str, list[bytes]] = {}
    stack = BrokerSettings()
    office = kafka_python_auth(stack, Role.OFFICE)
    for key, value in sorted(
        read_ledger(stack.kafka_bootstrap, Topics().policies, auth=office).items()
    ):
        if is_internal(key):
            continue
        t = tenant_of(key)
        if tenant is not None and t != tenant:
            continue
        if is_history(key):
            history.setdefault(t, []).append(value)
        else:
            current[t] = value
    return current, history


@click.group()
def policy() -> None:
    """Policies: purposes, camera purposes, retention per site/kind/purpose, legal ceiling."""


@policy.command("validate-config")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate_config(path: Path) -> None:
    """Check a policy document: 'PATH: OK …', or every problem on one 'Error:' line, exit 1."""
    doc = load_policy(path)
    click.echo(f"{path}: OK, a valid policy for tenant {doc.tenant}")


@policy.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="print what it would delete now; change nothing")
@click.option("--comment", default="", help="why this change (kept in the history)")
def apply(path: Path, dry_run: bool, comment: str) -> None:
    """Apply a policy as a new version (or, with --dry-run, show its effect)."""
    from stream_processor.policy.keys import history_key, policy_key
    from stream_processor.policy.retention import (
        CompiledPolicy,  # noqa: F811 - the runtime import of the TYPE_CHECKING name
        PolicyVersion,
        compile_version,
    )
    from stream_processor.processor.settings import ProcessorSettings
    from stream_processor.processor.sweeper import dry_run as count_deletions
    from stream_processor.runtime.ledger_client import write_records
    from stream_processor.store.factory import store_factory

    doc = load_policy(path)
    current, history = _versions(doc.tenant)
    version = 1 + max((compile_version(v).version for v in history.get(doc.tenant, [])), default=0)
    now_ms = int(time.time() * 1000)
    stack = BrokerSettings()
    factory, where = store_factory(stack, ProcessorSettings().store_path)
    store = factory()
    try:
        counts = count_deletions(store, CompiledPolicy(doc, version), now_ms)
    finally:
        store.close()
    verb = "would delete" if dry_run else "deletes on the next sweep"
    click.echo(f"policy v{version} for {doc.tenant} {verb} (store: {where}):")
    if not counts:
        click.echo("  nothing")
    for (_, site, kind), n in sorted(counts.items()):
        click.echo(f"  {site}\t{kind}\t{n}")
    click.echo(f"  total\t\t{sum(counts.values())}")
    if dry_run:
        return
    record = PolicyVersion(
        tenant=doc.tenant,
        version=version,
        applied_at_ms=now_ms,
        applied_by=getpass.getuser(),
        comment=comment,
        document=doc.model_dump(mode="json"),
    ).encode()
    topics = Topics()
    write_records(
        stack.kafka_bootstrap,
        topics.policies,
        [(history_key(doc.tenant, version), record), (policy_key(doc.tenant), record)],
        auth=kafka_python_auth(stack, Role.OFFICE),
    )
    current[doc.tenant] = record
    _apply_topic_retention(stack, topics, [compile_version(v) for v in current.values()])
    click.echo(f"applied policy v{version} for {doc.tenant}")


def _apply_topic_retention(
    stack: BrokerSettings, topics: Topics, policies: list[CompiledPolicy]
) -> None:
    from stream_processor.runtime.topics import tune_transport_topics

    tuned = tune_transport_topics(
        stack.kafka_bootstrap,
        topics,
        [p.raw_retention_ms for p in policies],
        [p.dlq_retention_ms for p in policies],
        kafka_python_auth(stack, Role.OFFICE),
    )
    if tuned is None:
        return
    raw, dlq, segment = tuned
    click.echo(
        f"kafka: {topics.raw} retention {raw // 1000}s, {topics.dlq} retention {dlq // 1000}s, "
        f"segment.ms {segment} (a record is gone within retention + segment + 60s)"
    )


TENANT = click.option("--tenant", required=True, help="tenant id")


def _version_doc(v: PolicyVersion, with_document: bool) -> dict[str, object]:
    doc: dict[str, object] = {
        "tenant": v.tenant, "version": v.version, "applied_at": _when(v.applied_at_ms),
        "applied_by": v.applied_by, "comment": v.comment,
    }  # fmt: skip
    if with_document:
        doc["document"] = v.document
    return doc


@policy.command()
@TENANT
@json_option
def show(tenant: str, as_json: bool) -> None:
    """Print the policy in force (YAML) with its version."""
    from stream_processor.policy.retention import decode_version

    current, _ = _versions(tenant)
    if tenant not in current:
        raise click.ClickException(f"no policy applied for {tenant}")
    v = decode_version(current[tenant])
    if as_json:
        click.echo(json.dumps(_version_doc(v, with_document=True), indent=2))
        return
    click.echo(
        f"# {tenant} policy v{v.version}, applied by {v.applied_by} at {_when(v.applied_at_ms)}"
    )
    yaml.safe_dump(v.document, sys.stdout, sort_keys=False)


@policy.command()
@TENANT
@json_option
def history(tenant: str, as_json: bool) -> None:
    """List every applied version, oldest first."""
    from stream_processor.policy.retention import decode_version

    _, versions = _versions(tenant)
    rows = sorted((decode_version(v) for v in versions.get(tenant, [])), key=lambda v: v.version)
    if as_json:
        click.echo(json.dumps([_version_doc(v, with_document=False) for v in rows], indent=2))
        return
    if not rows:
        click.echo(f"no policy applied for {tenant}")
    for v in rows:
        click.echo(f"v{v.version}\t{_when(v.applied_at_ms)}\t{v.applied_by}\t{v.comment}")


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
