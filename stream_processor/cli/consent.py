"""``facegate consent grant|withdraw|forget|show``: the consent ledger.

Records go to the compacted consent topic (``FACEGATE_TOPIC_CONSENT``); running
workers apply them within seconds. Subjects are per-site pseudonyms (``ps1_…``),
as the site's enrolment computed them; never a name or id number.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from stream_processor.cli.options import (
    json_option,
    place_options,
    require_subject,
    subject_options,
)
from stream_processor.policy.consent import (
    ALL_PURPOSES,
    ConsentRecord,
    GivenBy,
    consent_key,
    decode_consent,
)
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.ledger_client import Auth
from stream_processor.runtime.settings import BrokerSettings, Topics


def _now_ms() -> int:
    return int(time.time() * 1000)


def _write(records: list[tuple[bytes, bytes | None]]) -> None:
    from stream_processor.runtime.ledger_client import write_records

    write_records(BrokerSettings().kafka_bootstrap, Topics().consent, records, auth=_office())


def _office() -> dict[str, Any]:
    """The office's Kafka login (none with Kafka authentication off)."""
    return kafka_python_auth(BrokerSettings(), Role.OFFICE)


def _record(**kw: object) -> ConsentRecord:
    import msgspec

    try:
        return msgspec.convert(kw, ConsentRecord)
    except msgspec.ValidationError as exc:
        raise click.BadParameter(str(exc)) from exc


def _ledger() -> dict[bytes, bytes]:
    from stream_processor.runtime.ledger_client import read_ledger

    return read_ledger(BrokerSettings().kafka_bootstrap, Topics().consent, auth=_office())


def _check_purpose_declared(tenant: str, purpose: str) -> None:
    """Refuse consent for a purpose the tenant's policy does not declare."""
    from stream_processor.policy.keys import policy_key
    from stream_processor.policy.retention import compile_version
    from stream_processor.runtime.ledger_client import read_ledger

    policies = read_ledger(BrokerSettings().kafka_bootstrap, Topics().policies, auth=_office())
    data = policies.get(policy_key(tenant))
    if data is None:
        raise click.ClickException(f"tenant {tenant} has no policy; apply one first")
    if purpose not in compile_version(data).document.purposes:
        raise click.ClickException(f"purpose {purpose!r} is not declared in {tenant}'s policy")


@click.group()
def consent() -> None:
    """The consent ledger: grants and withdrawals per subject, site and purpose."""


GIVEN_BY = click.option(
    "--given-by", type=click.Choice([g.value for g in GivenBy]), default="self",
    show_default=True, help="who gave (or withdrew) it: the subject or a guardian",
)  # fmt: skip


@consent.command()
@place_options
@subject_options
@click.option("--purpose", required=True, help="a purpose declared in the tenant's policy")
@click.option(
    "--consent-ref", required=True,
    help="reference of the signed consent form (kept only as a keyed digest, ev1_…)",
)  # fmt: skip
@GIVEN_BY
@click.option("--minor", is_flag=True, help="the subject is under 14: a guardian must consent")
def grant(
    tenant: str, site: str, subject: str | None, resident_id: str | None,
    site_secret: Path | None, purpose: str, consent_ref: str, given_by: str, minor: bool,
) -> None:  # fmt: skip
    """Record a separate, prior consent for one purpose."""
    from edge_agent.pseudonym import consent_digest, load_site_secret
    from stream_processor.rights.office_key import evidence_digest, office_key

    subject = require_subject(subject, resident_id, site_secret, tenant, site)
    # The form's number never reaches the ledger or the audit log: only a keyed digest —
    # with the site secret, the same cr1_ digest the gate keeps; else under the office key.
    evidence = (
        consent_digest(load_site_secret(site_secret, tenant, site), consent_ref)
        if site_secret is not None
        else evidence_digest(office_key(BrokerSettings().state_dir), tenant, site, consent_ref)
    )
    record = _record(
        tenant=tenant, site=site, subject=subject, purpose=purpose, evidence_ref=evidence,
        status="granted", given_by=given_by, minor=minor, at_ms=_now_ms(),
    )  # fmt: skip
    _check_purpose_declared(tenant, purpose)
    _write([(record.key, record.encode())])
    click.echo(f"granted {purpose} at {tenant}/{site}")


@consent.command()
@place_options
@subject_options
@click.option("--purpose", default=None, help="one purpose; default: every purpose")
@GIVEN_BY
def withdraw(
    tenant: str, site: str, subject: str | None, resident_id: str | None,
    site_secret: Path | None, purpose: str | None, given_by: str,
) -> None:  # fmt: skip
    """Withdraw consent: later events are discarded, stored face events deleted,
    and the site's devices told to remove the template and purge their outbox."""
    subject = require_subject(subject, resident_id, site_secret, tenant, site)
    record = _record(
        tenant=tenant, site=site, subject=subject, purpose=purpose or ALL_PURPOSES,
        status="withdrawn", given_by=given_by, at_ms=_now_ms(),
    )  # fmt: skip
    _write([(record.key, record.encode())])
    click.echo(f"withdrawn {purpose or 'every purpose'} at {tenant}/{site}")


def forget_subject(
    bootstrap: str, topic: str, tenant: str, site: str, subject: str, auth: Auth | None = None
) -> int:
    """Tombstone every ledger record of a subject (erasure); returns how many keys.

    Call after the withdrawal has taken effect: a forgotten subject has no
    consent, so face events are discarded exactly as after a withdrawal.
    """
    from stream_processor.runtime.ledger_client import read_ledger, write_records

    prefix = consent_key(tenant, site, subject, "")
    keys = [k for k in read_ledger(bootstrap, topic, auth=auth) if k.startswith(prefix)]
    if keys:
        write_records(bootstrap, topic, [(k, None) for k in keys], auth=auth)
    return len(keys)


@consent.command()
@place_options
@subject_options
def forget(
    tenant: str, site: str, subject: str | None, resident_id: str | None,
    site_secret: Path | None,
) -> None:  # fmt: skip
    """Tombstone the subject's ledger records (they disappear on compaction)."""
    subject = require_subject(subject, resident_id, site_secret, tenant, site)
    n = forget_subject(
        BrokerSettings().kafka_bootstrap, Topics().consent, tenant, site, subject, _office()
    )
    click.echo(f"{n} ledger records tombstoned")


@consent.command()
@place_options
@subject_options
@json_option
def show(
    tenant: str, site: str, subject: str | None, resident_id: str | None,
    site_secret: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Show the subject's ledger records at one site."""
    subject = require_subject(subject, resident_id, site_secret, tenant, site)
    prefix = consent_key(tenant, site, subject, "")
    rows = sorted(
        (decode_consent(v) for k, v in _ledger().items() if k.startswith(prefix)),
        key=lambda r: r.purpose,
    )
    if as_json:
        import msgspec

        click.echo(json.dumps([msgspec.to_builtins(r) for r in rows], indent=2))
        return
    if not rows:
        click.echo("no consent records")
    for r in rows:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.at_ms / 1000))
        extra = " (minor)" if r.minor else ""
        evidence = f" evidence={r.evidence_ref}" if r.evidence_ref else ""
        click.echo(f"{r.purpose}\t{r.status.value}\tby {r.given_by.value}{extra}\t{when}{evidence}")
