"""Two complete hosts of one deployment on one machine, for the multi-host reliability
tests: each a state dir and environment of its own with an audit writer, a bridge
instance owning a disjoint scope, a processor worker in the one consumer group, an
erasure worker and a web app, sharing the brokers, one PostgreSQL event store and one
rights database (``FACEGATE_AUDIT_MODE=topic``). Host A is the erasure rig's (the
session stack's state dir), host B a state dir of the test's own."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from stream_processor.runtime.settings import Topics
from tests.conftest import free_ports, wait_for
from tests.support.hosts import Host, sim_sites
from tests.support.kafka import create_topics

if TYPE_CHECKING:
    from tests.erasure.conftest import ErasureRig


def http_get(port: int, path: str) -> bytes | None:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return bytes(r.read())
    except OSError:
        return None


@dataclass
class Deployment:
    """Two complete hosts on one PostgreSQL (event store, rights DB) and the brokers;
    simulated gates on ``sims`` (the first site's bridge is host A's, the second's B's,
    and the real gate's site is B's too)."""

    rig: ErasureRig
    a: Host
    b: Host
    events_dsn: str
    sims: list[str]
    webs: tuple[int, int]
    #: /metrics of host B's erasure worker: its own count of the erasures it completed.
    erasure_metrics_b: int

    @property
    def hosts(self) -> tuple[Host, Host]:
        return self.a, self.b

    def extra_logs(self) -> list[tuple[str, Path]]:
        logs = [(f"gate {g.folder.name}: {a.log.name}", a.log)
                for g in self.rig.gates for a in g.agents]  # fmt: skip
        return logs + [("test simulator", self.rig.p.tmp / "sim.log")]


def bridge_session(er: ErasureRig, env: dict[str, str]) -> None:
    """Create a bridge instance's durable MQTT session (its scope's subscriptions) before
    any gate publishes, as ``stack up`` does for the default instance."""
    from stream_processor.bridge.session import ensure_bridge_session
    from stream_processor.bridge.settings import BridgeSettings
    from stream_processor.runtime.accounts import AccountBook
    from stream_processor.runtime.layout import StateLayout

    s = er.p.stack.settings()
    settings = BridgeSettings(share_group=env["FACEGATE_BRIDGE_SHARE_GROUP"],
                              instance=env["FACEGATE_BRIDGE_INSTANCE"],
                              scope=json.loads(env["FACEGATE_BRIDGE_SCOPE"]))  # fmt: skip
    creds = AccountBook(StateLayout(s.state_dir)).bridge_credentials()
    ensure_bridge_session(s.host, s.mqtt_port, creds, settings)


def deploy(er: ErasureRig, pg: Any, tmp_path: Path, mp: pytest.MonkeyPatch) -> Deployment:
    """The shared names and databases, and the two hosts' environments (not started)."""
    from tests.support.store import new_pg_database

    tag = er.p.tag
    # The test's own checkpoint topic too: the erasure workers publish the checkpoints
    # they sign, and the session stack's default topic is every other test's.
    topics = Topics(audit_facts=f"t.{tag}.audit.facts", audit_chain=f"t.{tag}.audit.chain",
                    audit_checkpoints=f"t.{tag}.audit.checkpoints")  # fmt: skip
    audit_topics = {topics.audit_facts, topics.audit_chain, topics.audit_checkpoints}
    create_topics(er.p.stack, topics, audit_topics)
    events_dsn, rights_dsn = new_pg_database(pg), new_pg_database(pg)
    # Gates are registered from this process: on the shared registry, so that every
    # host's erasure worker waits for their acknowledgements.
    mp.setenv("FACEGATE_RIGHTS_DSN", rights_dsn)
    # Erasure progress lives in the shared rights DB too, not in a file of one host's.
    er.p.extra_env.pop("FACEGATE_ERASURE_DB_PATH")
    er.p.extra_env.update({
        "FACEGATE_STORE": "postgres",
        "FACEGATE_POSTGRES_DSN": events_dsn,
        "FACEGATE_RIGHTS_DSN": rights_dsn,
        "FACEGATE_AUDIT_MODE": "topic",
        "FACEGATE_AUDIT_CHAIN_WAIT_S": "60",
        "FACEGATE_AUDIT_WRITER_GROUP": f"facegate-audit-writer-{tag}",
        "FACEGATE_TOPIC_AUDIT_FACTS": topics.audit_facts,
        "FACEGATE_TOPIC_AUDIT_CHAIN": topics.audit_chain,
        "FACEGATE_TOPIC_AUDIT_CHECKPOINTS": topics.audit_checkpoints,
        "FACEGATE_WEB_TLS": "false",
    })  # fmt: skip
    er.p.grant()  # the roles' plan on the test's audit topics too
    sims = sim_sites(tag, 2)
    web_a, web_b, metrics_b = free_ports(3)
    state_a = Path(er.p.env["FACEGATE_STATE_DIR"])
    state_b = tmp_path / "host-b"
    # Each host: its own bridge instance (MQTT client id) owning a disjoint scope, its
    # own processor worker in the one consumer group (the app id), its own state dir.
    a = Host("a", state_a, {**er.p.env,
        "FACEGATE_BRIDGE_INSTANCE": f"{tag}-1",
        "FACEGATE_BRIDGE_SCOPE": json.dumps([f"demo/{sims[0]}"]),
        "FACEGATE_PROCESSOR_WORKER_NAME": "worker-a",
    }, logs=tmp_path / "host-a")  # fmt: skip
    b = Host("b", state_b, {**er.p.env,
        "FACEGATE_STATE_DIR": str(state_b),
        "FACEGATE_AUDIT_DIR": str(state_b / "audit"),
        "FACEGATE_BRIDGE_INSTANCE": f"{tag}-2",
        "FACEGATE_BRIDGE_SCOPE": json.dumps([f"acme/{er.site}", f"demo/{sims[1]}"]),
        "FACEGATE_PROCESSOR_WORKER_NAME": "worker-b",
        "FACEGATE_ERASURE_METRICS_PORT": str(metrics_b),
    })  # fmt: skip
    return Deployment(er, a, b, events_dsn, sims, (web_a, web_b), metrics_b)


def start_hosts(d: Deployment) -> None:
    """Both hosts' complete sets: audit writer, bridge, processor, erasure worker, web."""
    from stream_processor.runtime.command_key import command_key

    a, b = d.hosts
    # The deployment's secrets are made once (operator key, command-id key; the logins
    # exist) and copied to host B before either host starts, as a new host is set up.
    made = a.cli("audit", "public-key")
    assert made.returncode == 0, made.stdout + made.stderr
    command_key(a.state)
    shutil.copytree(a.state / "secrets", b.state / "secrets")
    for host in (a, b):
        bridge_session(d.rig, host.env)
    for host, port in zip(d.hosts, d.webs, strict=True):
        host.facegate("writer", "audit", "writer")
        host.facegate("bridge", "bridge", "run")
        host.facegate("processor", "processor", "worker")
        host.facegate("erasure", "erasure", "worker")
        host.facegate("web", "web", "serve", "--port", str(port))
    wait_for_processors(d, 2, "both hosts' processors in the group")


def wait_for_processors(d: Deployment, n: int, what: str) -> None:
    """The processors' one consumer group is stable with ``n`` members; a timeout says
    what the group looked like last."""
    from kafka.errors import KafkaError

    from tests.support.kafka import admin_client

    admin = admin_client(d.rig.p.stack)
    seen = ["not described yet"]
    try:

        def members() -> int:
            try:
                (group,) = admin.describe_consumer_groups([d.rig.p.processor_app])
            except KafkaError as exc:  # e.g. its coordinator still loading: ask again
                seen[0] = repr(exc)
                return 0
            seen[0] = f"{group.state}: " + ", ".join(
                f"{m.client_id}@{m.client_host}" for m in group.members
            )
            return len(group.members) if group.state == "Stable" else 0

        try:
            wait_for(lambda: members() == n, 120, what, 1.0)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the group last: {seen[0]}") from None
    finally:
        admin.close()
