"""Every id and format validator of the edge and the cloud refuses an id with a trailing
or embedded newline or control character.

Python's ``$`` matches before a final newline, and msgspec checks ``Meta(pattern=...)``
with ``re.search``: ``"site\\n"`` passed ``^[a-z0-9-]+$``. A trailing newline in an id
splits a log line or a topic level, and names the same resident or site twice. Each
case below is one validator, fed a valid value with a newline or a control character
put at its end or inside it; the valid value itself is accepted (so a refusal is the
poison's doing)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edge_agent.errors import FacegateError
from edge_agent.wire.events import PSEUDONYM_PATTERN, PURPOSE_PATTERN, TOKEN_PATTERN
from edge_agent.wire.topics import ID_PATTERN

pytestmark = pytest.mark.unit

AT = 1_767_000_000_000
ID = st.from_regex(ID_PATTERN, fullmatch=True)
PSEUDONYM = st.from_regex(PSEUDONYM_PATTERN, fullmatch=True)
PURPOSE = st.from_regex(PURPOSE_PATTERN, fullmatch=True)
TOKEN = st.from_regex(TOKEN_PATTERN, fullmatch=True)
HEX32 = st.from_regex(r"[0-9a-f]{32}", fullmatch=True)
HEX64 = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
#: Newlines and other control characters, C0, DEL, C1 and the Unicode line separators.
CONTROL = st.sampled_from(
    ["\n", "\r", "\r\n", "\t", "\x00", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\u2028"]
)


def poisoned(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A valid value with a control character at its end or at any place inside it."""

    def put(value: str, bad: str, at: int, at_end: bool) -> str:
        cut = len(value) if at_end else at % (len(value) + 1)
        return value[:cut] + bad + value[cut:]

    return st.builds(put, valid, CONTROL, st.integers(0, 80), st.booleans())


def _uuid7() -> str:
    from edge_agent.wire.ids import new_event_id

    return new_event_id(AT)


# -- the msgspec records: decoded (the strict wire decoder and plain msgspec) or converted

def _consent(**kw: Any) -> dict[str, Any]:
    return {"tenant": "acme", "site": "north", "subject": "ps1_" + "a" * 32,
            "purpose": "access_control", "status": "granted", "given_by": "self",
            "evidence_ref": "form-1", "at_ms": AT, **kw}  # fmt: skip


def _consent_decoded(field: str) -> Callable[[str], object]:
    from stream_processor.policy.consent import decode_consent

    return lambda v: decode_consent(json.dumps(_consent(**{field: v})).encode())


def _consent_converted(field: str) -> Callable[[str], object]:
    from stream_processor.policy.consent import ConsentRecord

    return lambda v: msgspec.convert(_consent(**{field: v}), ConsentRecord)


def _policy(v: str) -> object:
    from stream_processor.policy.retention import decode_version

    doc = {"tenant": v, "version": 1, "applied_at_ms": AT, "applied_by": "ops", "document": {}}
    return decode_version(json.dumps(doc).encode())


def _erasure(field: str, strict: bool) -> Callable[[str], object]:
    from stream_processor.erasure.request import decode_request, read_request

    def check(v: str) -> object:
        doc = {"request_id": _uuid7(), "tenant": "acme", "site": "north",
               "subject": "ps1_" + "b" * 32, "purposes": ["access_control"], "channel": "cli",
               "requested_at_ms": AT}  # fmt: skip
        doc[field] = [v] if field == "purposes" else v
        data = json.dumps(doc).encode()
        if not strict:
            return decode_request(data)
        got = read_request(data)
        if not hasattr(got, "request_id"):
            raise ValueError(f"refused: {got}")
        return got

    return check


def _fact(v: str) -> object:
    from stream_processor.audit.facts import decode_fact

    doc = {"v": 1, "id": v, "at_ms": AT, "type": "erasure_requested", "tenant": None,
           "site": None, "subject": None, "body": {}}  # fmt: skip
    return decode_fact(json.dumps(doc).encode())


def _command(field: str, plain: bool) -> Callable[[str], object]:
    from edge_agent.wire.commands import EdgeCommand, decode_command

    def check(v: str) -> object:
        doc = {"schema_version": 1, "command_id": _uuid7(), "type": "withdraw_consent",
               "tenant": "acme", "site": "north", "subject": "ps1_" + "c" * 32,
               "issued_at_ms": AT, "purpose": "access_control", field: v}  # fmt: skip
        data = json.dumps(doc).encode()
        return msgspec.json.decode(data, type=EdgeCommand) if plain else decode_command(data)

    return check


def _status(field: str, plain: bool) -> Callable[[str], object]:
    from edge_agent.wire.status import DeviceStatus, decode_status

    def check(v: str) -> object:
        doc: dict[str, Any] = {
            "schema_version": 1, "tenant": "acme", "site": "north", "gate": "g1",
            "device": "d1", "sent_at_ms": AT, "uptime_s": 1, "outbox_depth": 0,
            "oldest_queued_age_s": 0.0, "gallery_templates": 0, "models": ["det-1"],
            "frames_per_s": 1.0, "decision_latency_ms": 1.0, "software_version": "1.0",
        }  # fmt: skip
        doc[field] = [v] if field == "models" else v
        data = json.dumps(doc).encode()
        return msgspec.json.decode(data, type=DeviceStatus) if plain else decode_status(data)

    return check


# -- validators written with Python's re

def _identity(v: str) -> object:
    from edge_agent.wire.topics import DeviceIdentity

    return DeviceIdentity("acme", "north", v, "d1")


def _site_secret(v: str) -> object:
    from edge_agent.pseudonym import SiteSecret

    return SiteSecret("acme", v, b"k" * 32)


def _reference(v: str) -> object:
    from edge_agent.gallery.consent import check_reference

    check_reference("consent_ref", v)
    return v


def _purpose_name(v: str) -> object:
    from stream_processor.policy.purpose import purpose_name_problems

    if purpose_name_problems(v):
        raise ValueError(v)
    return v


def _salt(v: str) -> object:
    from stream_processor.audit.commitment import commit

    return commit("ps1_" + "d" * 32, v)


def _prev(v: str) -> object:
    from stream_processor.audit.entries import EntryType, build_entry

    return build_entry(seq=1, at_ms=AT, type=EntryType.ERASURE_REQUESTED, tenant=None,
                       site=None, subject=None, body={}, prev=v)  # fmt: skip


def _scope(v: str) -> object:
    from stream_processor.bridge.settings import BridgeSettings

    return BridgeSettings(scope=[f"acme/{v}"])


def _metrics_host(v: str) -> object:
    from stream_processor.runtime.device_targets import parse_metrics_address

    return parse_metrics_address(f"{v}:9100")


#: A kind of value: how to draw valid ones, and one to try first.
Kind = tuple[st.SearchStrategy[str], str]
ID_: Kind = (ID, "acme")
PS: Kind = (PSEUDONYM, "ps1_" + "e" * 32)
PU: Kind = (PURPOSE, "access_control")
TO: Kind = (TOKEN, "form-1")
H32: Kind = (HEX32, "f" * 32)
H64: Kind = (HEX64, "0" * 64)
HOST: Kind = (st.from_regex(r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True), "node-1")

def _keycard_request(field: str) -> Callable[[str], object]:
    # pydantic checks patterns with its Rust engine, where $ is the end: kept that way.
    from stream_processor.web.api.keycards import KeycardCreate

    return lambda v: KeycardCreate.model_validate(
        {"site": "north", "subject": "ps1_" + "f" * 32, field: v}
    )


CASES: dict[str, tuple[Kind, Callable[[str], object]]] = {
    **{f"consent decode {f}": (k, _consent_decoded(f)) for f, k in (
        ("tenant", ID_), ("site", ID_), ("subject", PS), ("purpose", PU), ("evidence_ref", TO))},
    **{f"consent convert {f}": (k, _consent_converted(f)) for f, k in (
        ("site", ID_), ("subject", PS), ("purpose", PU))},
    "policy version tenant": (ID_, _policy),
    **{f"erasure request {f} {'strict' if s else 'plain'}": (k, _erasure(f, s))
       for f, k in (("tenant", ID_), ("subject", PS), ("purposes", PU)) for s in (True, False)},
    "audit fact id": (H32, _fact),
    **{f"command {f} {'plain' if p else 'strict'}": (k, _command(f, p))
       for f, k in (("site", ID_), ("subject", PS), ("purpose", PU)) for p in (True, False)},
    **{f"device status {f} {'plain' if p else 'strict'}": (k, _status(f, p))
       for f, k in (("gate", ID_), ("models", TO)) for p in (True, False)},
    "device identity": (ID_, _identity),
    "site secret": (ID_, _site_secret),
    "enrolment reference": (TO, _reference),
    "purpose name": (PU, _purpose_name),
    "commitment salt": (H64, _salt),
    "audit entry prev": (H64, _prev),
    "bridge scope": (ID_, _scope),
    "metrics host": (HOST, _metrics_host),
    "web key-card request site": (ID_, _keycard_request("site")),
    "web key-card request subject": (PS, _keycard_request("subject")),
}  # fmt: skip
#: Validators that strip surrounding white space from what an operator typed: a
#: newline around the value may be dropped, the value returned is then the clean one.
STRIPPING = {"metrics host"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_newline_or_control_character_in_an_id_is_refused(case: str) -> None:
    (valid, first), validate = CASES[case]

    @settings(max_examples=40, deadline=None)
    @given(good=valid, bad=st.data())
    @example(good=first, bad=None)  # the plain trailing newline, always tried
    def refuses(good: str, bad: st.DataObject | None) -> None:
        poison = good + "\n" if bad is None else bad.draw(poisoned(st.just(good)))
        validate(good)  # the value without the poison passes
        # Every refusal of this code base is a ValueError (msgspec's and pydantic's
        # included) or of its one exception root; anything else fails the test.
        try:
            taken = validate(poison)
        except (ValueError, FacegateError):
            return
        assert case in STRIPPING and poison.strip() == good, f"{poison!r} taken"
        assert taken == validate(good)

    refuses()


def test_the_wire_patterns_alone_would_take_a_trailing_newline() -> None:
    # Why the checks above exist: the patterns as msgspec and re.match apply them.
    import re

    for pattern, value in ((ID_PATTERN, "acme"), (PSEUDONYM_PATTERN, "ps1_" + "e" * 32)):
        assert re.match(pattern, value + "\n") and re.search(pattern, value + "\n")
        assert re.fullmatch(pattern, value + "\n") is None
