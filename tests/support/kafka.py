"""Kafka logins for test code, and the ACLs of a test's private pipeline.

The suite's stacks run with SASL/SCRAM and the role ACLs on, so a bare test
client must log in. Test code is the operator here: it logs in as the admin
role (a super user). Processes under test (bridge, workers, CLI, web) never do:
they read their own role's password from the stack's state dir and are held to
the real ACLs, which ``grant_pipeline`` extends to a pipeline's private names.

``where`` in every helper is a stack handle (anything with ``settings()``), a
``BrokerSettings``, or a bootstrap string. A bootstrap string is looked up among
the stacks the fixtures registered (``register``), so helpers that only carry a
bootstrap keep working; an unknown one means a stack without auth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from stream_processor.runtime.kafka_acls import Grant, acl_plan, apply_acls, to_acl
from stream_processor.runtime.kafka_auth import Library, Role, client_config
from stream_processor.runtime.settings import BrokerSettings, Topics


class HasSettings(Protocol):
    def settings(self) -> Any: ...


Where = str | BrokerSettings | HasSettings

_KNOWN: dict[str, BrokerSettings] = {}


def register(settings: BrokerSettings) -> None:
    """Make ``settings``' login known to helpers that only get its bootstrap string."""
    _KNOWN[settings.kafka_bootstrap] = settings


def forget(settings: BrokerSettings) -> None:
    _KNOWN.pop(settings.kafka_bootstrap, None)


def broker_settings(where: Where) -> BrokerSettings:
    if isinstance(where, BrokerSettings):
        return where
    if isinstance(where, str):
        known = _KNOWN.get(where)
        return known if known is not None else BrokerSettings(kafka_bootstrap=where)
    settings = where.settings()
    assert isinstance(settings, BrokerSettings)
    return settings


def kafka_kwargs(where: Where, role: Role = Role.ADMIN) -> dict[str, Any]:
    """``bootstrap_servers`` and the login, for kafka-python and aiokafka clients."""
    return client_config(role, broker_settings(where), "kafka-python")


def login_kwargs(where: Where, role: Role = Role.ADMIN) -> dict[str, Any]:
    """Only the login part of ``kafka_kwargs`` (``{}`` without auth): for calls that
    take ``bootstrap`` and ``auth`` apart, e.g. ``ensure_topics(..., auth=...)``."""
    return {k: v for k, v in kafka_kwargs(where, role).items() if k != "bootstrap_servers"}


def confluent_config(where: Where, role: Role = Role.ADMIN) -> dict[str, Any]:
    """``bootstrap.servers`` and the login, for confluent-kafka clients."""
    return client_config(role, broker_settings(where), "confluent")


def library_config(where: Where, library: Library, role: Role = Role.ADMIN) -> dict[str, Any]:
    return client_config(role, broker_settings(where), library)


def admin_client(where: Where, **kw: Any) -> Any:
    from kafka import KafkaAdminClient

    return KafkaAdminClient(**kafka_kwargs(where), **kw)


def producer(where: Where, **kw: Any) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(**kafka_kwargs(where), **kw)


def consumer(where: Where, *topics: str, **kw: Any) -> Any:
    from kafka import KafkaConsumer

    return KafkaConsumer(*topics, **kafka_kwargs(where), **kw)


def create_topics(where: Where, topics: Topics, names: set[str] | None = None) -> None:
    """Create ``topics`` (only those in ``names`` if given) as the admin role."""
    from stream_processor.runtime.topics import ensure_topics, topic_specs

    settings = broker_settings(where)
    specs = [s for s in topic_specs(topics) if names is None or s.name in names]
    ensure_topics(settings.kafka_bootstrap, specs, 1, login_kwargs(settings))  # served


def wait_for_leaders(where: Where, names: list[str], timeout_s: float = 60) -> None:
    """Wait until the broker's metadata shows every partition of ``names`` with a leader
    (``ensure_topics`` does so for what it creates; this is for topics made otherwise)."""
    from stream_processor.errors import BrokerError
    from stream_processor.runtime.topic_leaders import wait_served

    admin = admin_client(where)
    try:
        wait_served(admin, names, timeout_s)
    except BrokerError as exc:
        raise AssertionError(str(exc)) from exc
    finally:
        admin.close()


def grant_pipeline(
    where: Where,
    topics: Topics,
    processor_app: str,
    erasure_app: str,
    bridge_group: str = "facegate-bridge",
) -> list[Grant]:
    """Apply the production ACL plan to a private pipeline's topic names and app ids, so
    its processes log in as their real roles and get exactly what they would get in
    production. Returns the grants (for ``revoke``); a no-op without auth."""
    settings = broker_settings(where)
    if not settings.kafka_auth:
        return []
    grants = acl_plan(topics, processor_app, erasure_app, bridge_group)
    apply_acls(settings, grants)
    return grants


def revoke(where: Where, grants: list[Grant], only_containing: str) -> None:
    """Delete the grants whose resource name contains ``only_containing`` (a pipeline's
    tag: grants on shared names are the stack's own and stay), so ACLs of finished
    pipelines do not pile up on the session's stack."""
    _delete(where, [g for g in grants if only_containing in g.name])


def _delete(where: Where, mine: list[Grant]) -> None:
    if not mine:
        return
    admin = admin_client(where)
    try:
        # An ACL is its own exact filter (kafka-python's ACL extends ACLFilter).
        admin.delete_acls([to_acl(g) for g in set(mine)])
    finally:
        admin.close()


def share_login(where: Where, state_dir: Path, *roles: Role) -> None:
    """Give another state dir (another host's, e.g. an office laptop's) the logins of
    ``roles`` only, as an operator would hand them out; a no-op without auth."""
    settings = broker_settings(where)
    if not settings.kafka_auth:
        return
    import json

    from stream_processor.runtime.kafka_auth import password, users_path
    from stream_processor.runtime.layout import write_private

    path = users_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(path, json.dumps({r.value: password(settings, r) for r in roles}))


def private_host(where: Where, state_dir: Path, topics: Topics, *roles: Role) -> list[Grant]:
    """Set up another host of the deployment for a test that runs facegate commands with
    their own state dir (``state_dir``) on private topic names (``topics``): that host
    gets the logins of ``roles`` only, and the production plan is applied to the names
    (default app ids). Returns the grants for ``revoke_private`` at the end."""
    share_login(where, state_dir, *roles)
    return grant_pipeline(where, topics, "facegate-processor", "facegate-processor-erasure")


def revoke_private(where: Where, grants: list[Grant]) -> None:
    """Delete the grants on names the session stack's own plan does not have."""
    stack_names = {
        g.name for g in acl_plan(Topics(), "facegate-processor", "facegate-processor-erasure")
    }
    mine = [g for g in grants if g.name not in stack_names and "facegate-processor" not in g.name]
    _delete(where, mine)
