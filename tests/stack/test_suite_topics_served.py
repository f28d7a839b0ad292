"""A test's topics are served before its first process starts: the suite's topic
helper returns only once the broker's metadata shows a leader for every partition (a
process started between CreateTopics' answer and the broker applying it was told the
topic does not exist, on a loaded machine), and says which topic it waited for when it
gives up."""

from __future__ import annotations

import time
import uuid

import pytest

from stream_processor.runtime.ledger_client import read_ledger
from stream_processor.runtime.settings import Topics
from stream_processor.runtime.topic_leaders import leaderless
from tests.conftest import StackHandle
from tests.support.kafka import create_topics, login_kwargs, wait_for_leaders


def test_topics_without_a_leader_everywhere_are_named_with_what_the_metadata_says() -> None:
    described = [
        {"topic": "t.a", "error_code": 0,
         "partitions": [{"partition": 0, "leader": 1}, {"partition": 2, "leader": -1}]},
        {"topic": "t.b", "error_code": 3, "partitions": []},
        {"topic": "t.c", "error_code": 0, "partitions": [{"partition": 0, "leader": 1}]},
    ]  # fmt: skip
    assert leaderless(described, ["t.a", "t.b", "t.c", "t.d"]) == {
        "t.a": "no leader for partitions [2]",
        "t.b": "error 3",
        "t.d": "unknown",
    }
    assert leaderless(described, ["t.c"]) == {}


@pytest.mark.component
def test_created_topics_are_readable_at_once_by_a_product_reader(
    running_stack: StackHandle,
) -> None:
    tag = uuid.uuid4().hex[:10]
    topics = Topics(consent=f"t.{tag}.consent", policies=f"t.{tag}.policies")
    create_topics(running_stack, topics, {topics.consent, topics.policies})
    # The ledger reader refuses a topic its broker does not serve ("does not exist").
    auth = login_kwargs(running_stack)
    bootstrap = running_stack.settings().kafka_bootstrap
    for name in (topics.consent, topics.policies):
        assert read_ledger(bootstrap, name, timeout_s=30, auth=auth) == {}


@pytest.mark.component
def test_a_topic_never_created_is_named_when_the_wait_gives_up(
    running_stack: StackHandle,
) -> None:
    missing = f"t.{uuid.uuid4().hex[:10]}.never"
    started = time.monotonic()
    with pytest.raises(AssertionError) as failed:
        wait_for_leaders(running_stack, [missing], timeout_s=1)
    assert time.monotonic() - started < 30
    assert f"{missing}" in str(failed.value) and "without a leader" in str(failed.value)


class _SlowMetadata:
    """An admin client whose metadata shows a leader only from its third look."""

    def __init__(self) -> None:
        self.looks = 0

    def describe_topics(self, names: list[str]) -> list[dict[str, object]]:
        self.looks += 1
        leader = 1 if self.looks >= 3 else -1
        return [{"topic": n, "error_code": 0, "partitions": [{"partition": 0, "leader": leader}]}
                for n in names]  # fmt: skip


@pytest.mark.unit
def test_ensure_topics_wait_returns_once_served_and_names_what_never_is() -> None:
    from stream_processor.errors import BrokerError
    from stream_processor.runtime.topic_leaders import wait_served

    admin = _SlowMetadata()
    wait_served(admin, ["t.a", "t.b"], timeout_s=30)
    assert admin.looks == 3
    with pytest.raises(BrokerError, match=r"t\.x.*no leader for partitions \[0\].*stack status"):
        wait_served(_NeverServed(), ["t.x"], timeout_s=0.3)


class _NeverServed(_SlowMetadata):
    def describe_topics(self, names: list[str]) -> list[dict[str, object]]:
        return [{"topic": n, "error_code": 0, "partitions": [{"partition": 0, "leader": -1}]}
                for n in names]  # fmt: skip
