"""deploy/k8s: core resources valid for Kubernetes, Strimzi resources valid against the
operator's CRD schemas (read from ../shared/reference/strimzi-crds/ at test time), and
topics, users and processes that agree with the code."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from stream_processor.runtime.settings import Topics
from stream_processor.runtime.topics import topic_specs
from tests.deploy.support import DEPLOY, REPO, check_environment
from tests.support.edge import FACEGATE

pytestmark = pytest.mark.unit

K8S = DEPLOY / "k8s"
CRDS = REPO.parent / "shared" / "reference" / "strimzi-crds"
KUBERNETES = "1.37.0"
STRIMZI = "kafka.strimzi.io/v1"


def resources() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in resources() if d["kind"] == kind]


def crd_schemas() -> dict[str, dict[str, Any]]:
    """Kind → the openAPIV3Schema of the served version, from the operator's CRD files."""
    assert CRDS.is_dir(), f"{CRDS} is missing: the Strimzi CRDs are reference data in shared/"
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        (version,) = [v for v in crd["spec"]["versions"] if v.get("served")]
        schemas[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return schemas


def unknown_fields(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Fields the schema does not declare: the API server would drop them silently."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                found.append(f"{where}.{key}")
            else:
                found += unknown_fields(item, schema["properties"][key], f"{where}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += unknown_fields(item, schema["items"], f"{where}[{i}]")
    return found


def strimzi_problems(doc: dict[str, Any], schemas: dict[str, dict[str, Any]]) -> list[str]:
    schema = schemas[doc["kind"]]
    body = {k: v for k, v in doc.items() if k != "metadata"}  # metadata: Kubernetes' own
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(body)]
    return errors + unknown_fields(body, schema)


def test_core_resources_are_valid_kubernetes_objects() -> None:
    core = [d for d in resources() if not d["apiVersion"].startswith("kafka.strimzi.io")]
    assert {d["kind"] for d in core} >= {
        "Namespace", "ConfigMap", "Secret", "Deployment", "StatefulSet", "Service",
        "PersistentVolumeClaim", "NetworkPolicy", "PodDisruptionBudget",
    }
    for doc in core:
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_core_validator_refuses_a_misspelled_field() -> None:
    deployment = copy.deepcopy(of_kind("Deployment")[0])
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_strimzi_resources_are_valid_against_the_operator_crds() -> None:
    schemas = crd_schemas()
    strimzi = [d for d in resources() if d["apiVersion"].startswith("kafka.strimzi.io")]
    assert {d["kind"] for d in strimzi} == {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"}
    for doc in strimzi:
        assert doc["apiVersion"] == STRIMZI
        assert strimzi_problems(doc, schemas) == [], doc["metadata"]["name"]


def test_the_crd_check_refuses_a_wrong_type_and_an_unknown_field() -> None:
    schemas = crd_schemas()
    topic = copy.deepcopy(of_kind("KafkaTopic")[0])
    topic["spec"]["partitions"] = "six"
    topic["spec"]["replica"] = 3
    problems = strimzi_problems(topic, schemas)
    assert any("six" in p for p in problems) and ".spec.replica" in problems


def test_kafka_is_kraft_with_three_nodes_and_scram_clients() -> None:
    (pool,) = of_kind("KafkaNodePool")
    assert pool["spec"]["replicas"] == 3
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}
    (kafka,) = of_kind("Kafka")
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    listeners = kafka["spec"]["kafka"]["listeners"]
    assert all(x["authentication"]["type"] == "scram-sha-512" for x in listeners)
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False


def test_topics_and_configs_equal_what_facegate_stack_creates() -> None:
    expected = {s.name: (s.partitions, s.configs) for s in topic_specs(Topics(), 3)}
    actual = {
        t["spec"]["topicName"]: (t["spec"]["partitions"],
                                 {k: str(v) for k, v in t["spec"]["config"].items()})
        for t in of_kind("KafkaTopic")
    }
    assert actual == expected
    assert all(t["spec"]["replicas"] == 3 for t in of_kind("KafkaTopic"))


def _acls(user: str) -> list[dict[str, Any]]:
    (doc,) = [u for u in of_kind("KafkaUser") if u["metadata"]["name"] == user]
    assert doc["spec"]["authentication"]["type"] == "scram-sha-512"
    return doc["spec"]["authorization"]["acls"]  # type: ignore[no-any-return]


_OPERATIONS = {"Read": "READ", "Write": "WRITE", "Describe": "DESCRIBE", "Create": "CREATE",
               "Alter": "ALTER", "Delete": "DELETE", "DescribeConfigs": "DESCRIBE_CONFIGS",
               "AlterConfigs": "ALTER_CONFIGS", "All": "ALL"}


def _grants() -> set[tuple[str, str, str, str, bool, bool]]:
    """(user, operation, resource type, name, prefixed, deny) of every KafkaUser ACL."""
    out = set()
    for user in of_kind("KafkaUser"):
        for acl in _acls(user["metadata"]["name"]):
            r = acl["resource"]
            assert acl.get("type", "allow") in ("allow", "deny") and acl.get("host", "*") == "*"
            for op in acl["operations"]:
                kind = "transactional_id" if r["type"] == "transactionalId" else r["type"]
                out.add((user["metadata"]["name"], _OPERATIONS[op], kind, r.get("name", ""),
                         r.get("patternType") == "prefix", acl.get("type") == "deny"))
    return out


def test_users_and_acls_are_the_codes_role_plan() -> None:
    from stream_processor.processor.settings import ProcessorSettings
    from stream_processor.runtime.kafka_acls import acl_plan

    app = ProcessorSettings().app_id
    plan = {(g.role.user, g.operation, g.resource, g.name, g.prefixed, g.deny)
            for g in acl_plan(Topics(), app, f"{app}-erasure")}
    assert _grants() == plan
    # The ledgers of consent and policies are written by the office only, and by the
    # erasure worker (it withdraws and tombstones the subject's consent, and writes the
    # heartbeat that rolls both ledgers' segments); raw events by the bridge only.
    t = Topics()
    writers = {(u, n) for u, op, kind, n, _, _ in plan if op == "WRITE" and kind == "topic"}
    office = {"facegate-office", "facegate-web"}
    assert {u for u, n in writers if n == t.consent} == {*office, "facegate-erasure"}
    assert {u for u, n in writers if n == t.policies} == {*office, "facegate-erasure"}
    assert {u for u, n in writers if n == t.raw} == {"facegate-bridge"}


def test_processes_log_in_with_the_passwords_the_kafka_users_are_given() -> None:
    from stream_processor.runtime.kafka_auth import MECHANISM, PROTOCOL, Role, users_path

    (kafka,) = of_kind("Kafka")
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert f"{listener['authentication']['type'].upper()}" == MECHANISM
    assert listener["tls"] is (PROTOCOL == "SASL_SSL")
    for user in of_kind("KafkaUser"):
        ref = user["spec"]["authentication"]["password"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": "facegate-kafka-users",
                       "key": Role(user["metadata"]["name"].removeprefix("facegate-")).value}
    (config,) = of_kind("ConfigMap")
    assert config["data"]["FACEGATE_KAFKA_AUTH"] == "true"
    users_file = str(users_path(Path(config["data"]["FACEGATE_STATE_DIR"])))
    for name, container in _containers():
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        assert users_file in mounts, f"{name}/{container['name']}"
        assert mounts[users_file]["subPath"] == "kafka-users.json"


def _containers() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for kind in ("Deployment", "StatefulSet"):
        for doc in of_kind(kind):
            for c in doc["spec"]["template"]["spec"]["containers"]:
                if "facegate" in c["image"]:
                    out.append((doc["metadata"]["name"], c))
    return out


def test_every_cloud_process_runs_a_real_command() -> None:
    started = {tuple(c["args"][:2]) for _, c in _containers()}
    assert started == {("bridge", "run"), ("processor", "worker"), ("erasure", "worker"),
                       ("audit", "follow"), ("audit", "checkpointer"), ("audit", "writer"),
                       ("web", "serve")}
    for command in started:
        shown = subprocess.run([FACEGATE, *command, "--help"], capture_output=True, timeout=60)
        assert shown.returncode == 0, command
    bridges = [c for _, c in _containers() if c["args"][:2] == ["bridge", "run"]]
    scopes = [next(e["value"] for e in c["env"] if e["name"] == "FACEGATE_BRIDGE_SCOPE")
              for c in bridges]
    assert len(set(scopes)) == len(bridges) == 2


def test_the_environment_is_read_and_accepted_by_the_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (config,) = of_kind("ConfigMap")
    env = dict(config["data"])
    (kafka,) = of_kind("Kafka")
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert env["FACEGATE_KAFKA_BOOTSTRAP"] == (
        f"{kafka['metadata']['name']}-kafka-bootstrap:{listener['port']}"
    )
    (web,) = [s for s in of_kind("Service") if s["metadata"]["name"] == "facegate-web"]
    assert web["spec"]["ports"][0]["targetPort"] == "http"
    for name, container in _containers():
        extra = {e["name"]: e.get("value", "from-a-secret") for e in container["env"]}
        check_environment({**env, **extra}, f"{name}/{container['name']}", monkeypatch)
        ports = {p["containerPort"] for p in container.get("ports", [])}
        if container["args"][:2] == ["web", "serve"]:
            assert ports == {int(env["FACEGATE_WEB_PORT"])}


#: The processes that open the rights database or the audit log (its openings live in
#: the rights database in the multi-host mode); the bridges and the writer do neither.
_RIGHTS_USERS = {("processor", "worker"), ("erasure", "worker"), ("audit", "follow"),
                 ("audit", "checkpointer"), ("web", "serve")}  # fmt: skip


def test_the_layout_is_multi_host_one_audit_chain_and_a_shared_rights_database() -> None:
    """No pod keeps on its own volume what another pod needs: the audit chain is the
    topic (one writer of a standby pair), the rights database is PostgreSQL, and its DSN
    comes from the orchestrator's secret store, never as a literal value."""
    (config,) = of_kind("ConfigMap")
    assert config["data"]["FACEGATE_AUDIT_MODE"] == "topic"
    assert "FACEGATE_RIGHTS_DSN" not in config["data"]  # a password: never in a ConfigMap
    for name, c in _containers():
        env = {e["name"]: e for e in c.get("env", [])}
        if tuple(c["args"][:2]) in _RIGHTS_USERS:
            dsn = env["FACEGATE_RIGHTS_DSN"]
            assert "value" not in dsn, f"{name}/{c['name']}"
            assert dsn["valueFrom"]["secretKeyRef"] == {"name": "facegate-postgres",
                                                        "key": "rights-dsn"}
        else:
            assert "FACEGATE_RIGHTS_DSN" not in env, f"{name}/{c['name']} needs no rights DB"
    (writers,) = [d for d in of_kind("Deployment")
                  if d["metadata"]["name"] == "facegate-audit-writer"]  # fmt: skip
    assert writers["spec"]["replicas"] >= 2  # a standby takes over on a rebalance
    secrets = {s["metadata"]["name"]: s for s in of_kind("Secret")}
    assert "rights-dsn" in secrets["facegate-postgres"]["metadata"]["annotations"][
        "facegate/contents"]  # fmt: skip


def test_every_deployment_has_a_disruption_budget_and_runs_unprivileged() -> None:
    budgets = {tuple(sorted(p["spec"]["selector"]["matchLabels"].items()))
               for p in of_kind("PodDisruptionBudget")}
    for doc in of_kind("Deployment"):
        labels = doc["spec"]["selector"]["matchLabels"]
        assert tuple(sorted(labels.items())) in budgets, doc["metadata"]["name"]
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
    kinds = {p["metadata"]["name"] for p in of_kind("NetworkPolicy")}
    assert "default-deny-ingress" in kinds


def test_secrets_hold_no_value_in_the_repository() -> None:
    names = {s["metadata"]["name"] for s in of_kind("Secret")}
    assert {"facegate-site-secrets", "facegate-audit-signing-key", "facegate-tokens"} <= names
    for secret in of_kind("Secret"):
        assert not secret.get("data") and not secret.get("stringData")


def test_everything_lives_in_the_facegate_namespace_created_first() -> None:
    assert sorted(K8S.glob("*.yaml"))[0].name == "00-namespace.yaml"
    for doc in resources():
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "facegate", doc["metadata"]["name"]
