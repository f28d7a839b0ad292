"""``facegate office enrol|check``: the site office enrols a resident into its gallery and
records the consent in the cloud's ledger in one step, and checks that both agree.

The office gallery is then carried to the site's gates as a bundle
(``facegate edge gallery export-bundle``; docs/operations.md, section 5).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import click

from edge_agent.cli import enroll as edge_enroll
from edge_agent.errors import WireError
from stream_processor.errors import FacegateError
from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
from stream_processor.runtime.settings import BrokerSettings, Topics

if TYPE_CHECKING:
    from stream_processor.policy.consent import ConsentRecord
    from stream_processor.runtime.ledger_client import Located


@click.group()
def office() -> None:
    """The site office: enrolment and consent ledger together."""


def _site_of(config_path: Path):  # type: ignore[no-untyped-def]
    from edge_agent.config import load_config
    from edge_agent.pseudonym import load_site_secret

    config = load_config(config_path)
    return config, load_site_secret(config.site_secret)


@office.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True,
              envvar="FACEGATE_EDGE_CONFIG", help="the office's edge config (its gallery)")
@click.option("--resident-id", "resident", required=True,
              help="resident id (hashed with the site secret, never stored or sent)")
@click.option("--photo", "photos", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="a photo with one face (repeatable); embedded here, never kept")
@click.option("--consent-ref", required=True, help="reference of the signed face consent form")
@click.option("--minor/--adult", required=True, help="under 14: a guardian consents")
@click.option("--guardian-consent-ref", default=None, help="the guardian's consent (minors)")
@click.option("--purpose", default="access_control", show_default=True,
              help="the purpose consented to (declared in the tenant's policy)")
@click.pass_context
def enrol(
    ctx: click.Context, config_path: Path, resident: str, photos: tuple[Path, ...],
    consent_ref: str, minor: bool, guardian_consent_ref: str | None, purpose: str,
) -> None:  # fmt: skip
    """Enrol into the office gallery and grant consent in the ledger; name any step left."""
    from edge_agent.pseudonym import consent_digest, pseudonym
    from stream_processor.cli.consent import _check_purpose_declared, _record, _write
    from stream_processor.policy.consent import GivenBy

    _config, secret = _site_of(config_path)
    tenant, site = secret.tenant, secret.site
    # The ledger is asked first: a purpose the policy lacks stops before anything is written.
    _check_purpose_declared(tenant, purpose)
    ctx.invoke(
        edge_enroll, config_path=config_path, resident=resident, photos=photos,
        consent_ref=consent_ref, minor=minor, birth_date=None,
        guardian_consent_ref=guardian_consent_ref, cards=(), pin=None,
    )
    subject = pseudonym(secret, resident)
    # The same site-keyed digest the gallery keeps (edge enroll), never the form's number.
    evidence = consent_digest(secret, (guardian_consent_ref if minor else consent_ref) or "")
    record = _record(
        tenant=tenant, site=site, subject=subject, purpose=purpose, evidence_ref=evidence,
        status="granted", given_by=(GivenBy.GUARDIAN if minor else GivenBy.SELF).value,
        minor=minor, at_ms=int(time.time() * 1000),
    )
    try:
        _write([(record.key, record.encode())])
    except FacegateError as exc:
        raise click.ClickException(
            f"{subject} is enrolled in the office gallery, but the consent ledger step is "
            f"missing ({exc}); finish it with: facegate consent grant --tenant {tenant} "
            f"--site {site} --resident-id <id> --site-secret <the site secret file> "
            f"--purpose {purpose} --consent-ref <the same form reference>"
            f"{' --given-by guardian --minor' if minor else ''}"
        ) from None
    click.echo(f"{subject}: enrolled in the office gallery and consent for {purpose} granted "
               f"at {tenant}/{site}")


class Unreadable(NamedTuple):
    """A consent record the check could not decode: where it is and the decoder's reason
    code (never the record's bytes, key or the decoder's detail, which may quote them)."""

    partition: int
    offset: int
    reason: str


def readable_consents(
    located: Iterable[Located],
) -> tuple[list[ConsentRecord], list[Unreadable]]:
    """The ledger's records that decode, and where the others are: one bad record must
    not keep the office from checking every other resident."""
    from stream_processor.policy.consent import decode_consent

    good: list[ConsentRecord] = []
    bad: list[Unreadable] = []
    for partition, offset, value in located:
        try:
            good.append(decode_consent(value))
        except WireError as exc:
            bad.append(Unreadable(partition, offset, exc.reason))
    bad.sort()
    return good, bad


@office.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path), required=True,
              envvar="FACEGATE_EDGE_CONFIG", help="the office's edge config (its gallery)")
@click.option("--purpose", default="access_control", show_default=True,
              help="the face purpose whose grants the templates need")
@click.option("--json", "as_json", is_flag=True, help="print JSON (one document)")
def check(config_path: Path, purpose: str, as_json: bool) -> None:
    """List residents whose enrolment and consent grant disagree, and consent records
    that cannot be read; exit 1 if any."""
    from edge_agent.compose import open_gallery
    from stream_processor.rights.enrolment import missing_steps
    from stream_processor.runtime.ledger_client import read_ledger_located

    config, secret = _site_of(config_path)
    stack = BrokerSettings()
    ledger = read_ledger_located(
        stack.kafka_bootstrap, Topics().consent, auth=kafka_python_auth(stack, Role.OFFICE)
    )
    consents, unreadable = readable_consents(ledger.values())
    found = missing_steps(
        open_gallery(config).load().records, consents,
        tenant=secret.tenant, site=secret.site, purpose=purpose,
    )  # fmt: skip
    if as_json:
        click.echo(json.dumps({
            "missing": [{"pseudonym": m.pseudonym, "missing": m.step} for m in found],
            "unreadable": [u._asdict() for u in unreadable],
        }))  # fmt: skip
    else:
        for m in found:
            click.echo(f"{m.pseudonym}\t{m.step}")
        for u in unreadable:
            click.echo(f"unreadable consent record: {Topics().consent} partition {u.partition} "
                       f"offset {u.offset} ({u.reason}); skipped")  # fmt: skip
        click.echo(f"{len(found)} residents with a missing step at {secret.tenant}/{secret.site}")
        if unreadable:
            click.echo(f"{len(unreadable)} consent records could not be read: residents they "
                       "concern may be missing from the check")  # fmt: skip
    if found or unreadable:
        raise SystemExit(1)
