"""Both retention sources of the notices read a policy with the processors' compiler:
the file source and the topic source answer alike, and a file the processors would
refuse is refused here too, naming the file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from stream_processor.errors import ConfigError
from stream_processor.notices.policy_retention import PolicyTopicRetention
from stream_processor.notices.retention import PolicyFileRetention
from stream_processor.policy.keys import policy_key
from stream_processor.policy.retention import PolicyVersion
from tests.support.web import POLICY

pytestmark = pytest.mark.unit

SITE_OVERRIDE = "sites:\n  north-garden:\n    retention: {face_match: {access_control: 7d}}\n"

QUESTIONS = [
    ("any-site", "face_match", "access_control"),
    ("north-garden", "face_match", "access_control"),  # the site's own rule
    ("north-garden", "key_card", "access_control"),  # falls back to the tenant's
    ("any-site", "unknown_face", "access_control"),  # zero: counted, never stored
    ("any-site", "face_match", "marketing"),  # no rule: never stored
    ("any-site", "no_such_kind", "access_control"),  # a kind the policy cannot know
]


def test_file_and_topic_sources_answer_alike(tmp_path: Path) -> None:
    text = POLICY.format(tenant="acme", face="30d") + SITE_OVERRIDE
    (tmp_path / "acme.yaml").write_text(text)
    files = PolicyFileRetention(tmp_path)
    topic = PolicyTopicRetention("unused:1", "unused")
    version = PolicyVersion(
        tenant="acme",
        version=1,
        applied_at_ms=1_790_000_000_000,
        applied_by="test",
        document=yaml.safe_load(text),
    )
    topic.apply(policy_key("acme"), version.encode())
    answers = [files.retention_for("acme", *q) for q in QUESTIONS]
    assert answers == [topic.retention_for("acme", *q) for q in QUESTIONS]
    day = dt.timedelta(days=1)
    assert answers == [30 * day, 7 * day, 90 * day, dt.timedelta(0), None, None]
    assert files.retention_for("other-tenant", *QUESTIONS[0]) is None


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (("30d", "30"), "a bare number"),
        (("manual_open:  {access_control: 90d}", "manual_open:  {marketing: 90d}"), "undeclared"),
        (("legal_ceiling: 3y", "legal_ceiling: 9y"), "above the legal ceiling"),
        (("tenant: acme\n", ""), "no tenant"),
    ],
)
def test_a_policy_file_the_processors_refuse_is_refused(
    tmp_path: Path, change: tuple[str, str], why: str
) -> None:
    text = POLICY.format(tenant="acme", face="30d")
    assert change[0] in text, why
    path = tmp_path / "acme.yaml"
    path.write_text(text.replace(*change))
    with pytest.raises(ConfigError, match=str(path)):
        PolicyFileRetention(tmp_path).retention_for("acme", *QUESTIONS[0])


def test_an_edited_file_shows_at_the_next_lookup(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(POLICY.format(tenant="acme", face="30d"))
    source = PolicyFileRetention(path)
    assert source.retention_for("acme", *QUESTIONS[0]) == dt.timedelta(days=30)
    path.write_text(POLICY.format(tenant="acme", face="12h"))
    assert source.retention_for("acme", *QUESTIONS[0]) == dt.timedelta(hours=12)
