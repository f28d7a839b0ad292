"""A closed purpose vocabulary: shipped purposes, custom ones with a legal basis,
catch-alls refused by the words they contain, every problem in one pass."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from stream_processor.policy.document import PolicyInvalid, check_policy, parse_policy_yaml
from stream_processor.policy.purpose import (
    CATCH_ALL_STEMS,
    CATCH_ALL_WORDS,
    SHIPPED_PURPOSES,
    catch_all_words_in,
)
from tests.support.processor import BASE_POLICY

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[2] / "docs" / "processor.md"
CUSTOM = {"description": "a use described in plain words", "legal_basis": "contract, clause 4"}


def with_purpose(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    d = copy.deepcopy(BASE_POLICY)
    d["purposes"][name] = spec if spec is not None else dict(CUSTOM)
    d["retention"]["face_match"][name] = "3y"
    return d


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(PolicyInvalid) as info:
        check_policy(data)
    return info.value.problems


@pytest.mark.parametrize(
    ("name", "word"),
    [
        ("community_security", "security"),
        ("publicsecurity", "security"),
        ("pandemic_control", "pandemic"),
        ("public_security_and_access", "public"),
        ("movement_trails", "trail"),
        ("face_search", "search"),
        ("unknown_face_search", "search"),
    ],
)
def test_catch_all_purposes_are_refused_by_the_words_they_contain(name: str, word: str) -> None:
    # Described, with a legal basis and a three-year rule: still refused.
    found = problems_of(with_purpose(name))
    assert any(f"purpose {name!r} is a catch-all" in p and repr(word) in p for p in found), found


@given(
    st.sampled_from(CATCH_ALL_STEMS),
    st.from_regex(r"[a-z0-9_]{0,10}", fullmatch=True),
    st.from_regex(r"[a-z0-9_]{0,10}", fullmatch=True),
)
def test_a_stem_anywhere_in_a_name_refuses_it(stem: str, before: str, after: str) -> None:
    assert stem in catch_all_words_in("x" + before + stem + after)


def test_whole_words_refuse_only_as_words() -> None:
    assert catch_all_words_in("all_residents") == ["all"]
    assert catch_all_words_in("hallway_access") == []
    assert catch_all_words_in("parcel_delivery") == []


def test_shipped_purposes_need_no_description_and_cap_face_retention() -> None:
    d = copy.deepcopy(BASE_POLICY)
    d["purposes"] = {name: {} for name in SHIPPED_PURPOSES}
    doc = check_policy(d)
    for name, shipped in SHIPPED_PURPOSES.items():
        assert doc.description_of(name) == shipped.description
    d["retention"]["face_match"]["access_control"] = "31d"
    assert problems_of(d) == [
        "retention.face_match.access_control: 31d exceeds the 30d access_control allows "
        "for face events"
    ]


def test_a_shipped_purpose_keeps_its_fixed_description() -> None:
    d = with_purpose("visitor_management", {"description": "anything the operator likes"})
    d["retention"]["face_match"]["visitor_management"] = "7d"
    (found,) = problems_of(d)
    assert "fixed description" in found


@pytest.mark.parametrize("missing", ["description", "legal_basis"])
def test_a_custom_purpose_needs_a_description_and_a_legal_basis(missing: str) -> None:
    spec = {k: v for k, v in CUSTOM.items() if k != missing}
    (found,) = problems_of(with_purpose("parcel_lockers", spec))
    assert "custom" in found and missing in found and "camera notice" in found
    doc = check_policy(with_purpose("parcel_lockers"))
    assert doc.purposes["parcel_lockers"].legal_basis == CUSTOM["legal_basis"]


def test_every_problem_in_one_pass() -> None:
    d = with_purpose("community_security")
    d["purposes"]["pandemic_control"] = {"description": "keep the compound safe"}
    d["unknown_face_search"] = True
    d["sites"] = {"site-1": {"movement_trails": True}}
    d["camera_purposes"] = ["access_control", "marketing"]
    d["retention"]["key_card"]["access_control"] = "4y"
    found = problems_of(d)
    expected = [
        "'community_security' is a catch-all",
        "'pandemic_control' is a catch-all",
        "refused by design: unknown_face_search",
        "sites.site-1: refused by design: movement_trails",
        "camera_purposes: purpose 'marketing' is not declared",
        "retention.key_card.access_control: 4y exceeds the legal ceiling",
    ]
    for fragment in expected:
        assert any(fragment in p for p in found), (fragment, found)


def test_a_field_error_does_not_hide_the_purpose_errors() -> None:
    d = with_purpose("face_search")
    d["transport"] = {"raw_retention": "10s"}
    found = problems_of(d)
    assert any("'face_search' is a catch-all" in p for p in found), found
    assert any("at least 1m" in p for p in found), found


def _docs_words(marker: str) -> set[str]:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(re.escape(marker) + r"(.*?)(?:\n\s*-|\n\n)", text, re.S)
    assert match, f"docs/processor.md has no line starting {marker!r}"
    return set(re.findall(r"`([a-z_]+)`", match.group(1)))


def test_the_docs_list_exactly_the_refused_words() -> None:
    assert _docs_words("refused anywhere in the name, even run together:") == set(CATCH_ALL_STEMS)
    assert _docs_words("refused as a whole word between underscores:") == set(CATCH_ALL_WORDS)


def test_policy_validate_config_prints_every_problem(tmp_path: Path) -> None:
    from stream_processor.cli.policy import validate_config

    d = with_purpose("publicsecurity")
    d["camera_purposes"] = ["marketing"]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(d))
    result = CliRunner().invoke(validate_config, [str(path)])
    assert result.exit_code == 1
    assert "2 problems" in result.output
    assert "'publicsecurity' is a catch-all" in result.output
    assert "'marketing' is not declared" in result.output
    with pytest.raises(PolicyInvalid):
        parse_policy_yaml(path.read_text())
