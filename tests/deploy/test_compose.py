"""deploy/compose and the Dockerfile agree with the code: services, commands, settings,
ports and volumes (Docker is not run here; the files are parsed)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from stream_processor.runtime.layout import StateLayout
from stream_processor.runtime.settings import BrokerSettings
from stream_processor.runtime.tls import TlsFiles
from tests.deploy.support import DEPLOY, REPO, check_environment, parse_env_file
from tests.support.edge import FACEGATE

pytestmark = pytest.mark.unit

COMPOSE = DEPLOY / "compose"
SERVICES = {
    "mosquitto", "kafka-1", "kafka-2", "kafka-3", "postgres", "topics", "command-key", "admin",
    "bridge-a", "bridge-b", "worker", "erasure", "audit-follower", "audit-checkpointer",
    "audit-writer", "web", "prometheus", "grafana",
}
#: The setting that names each facegate process's /metrics port.
METRICS_PORT = {
    ("bridge", "run"): "FACEGATE_BRIDGE_METRICS_PORT",
    ("processor", "worker"): "FACEGATE_PROCESSOR_METRICS_PORT",
    ("erasure", "worker"): "FACEGATE_ERASURE_METRICS_PORT",
    ("web", "serve"): "FACEGATE_WEB_PORT",
}
_INTERPOLATED = re.compile(r"\$\{([A-Z_]+)(:\?[^}]*)?\}")


def compose() -> dict[str, Any]:
    doc = yaml.safe_load((COMPOSE / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]  # type: ignore[no-any-return]


def facegate_services() -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services().items() if str(s.get("image", "")).startswith("facegate:")}


def environment(service: dict[str, Any]) -> dict[str, str]:
    """What the container sees, with compose's ${VAR:?…} filled as a user's .env would."""
    env: dict[str, str] = {}
    for name in service.get("env_file", []):
        env |= parse_env_file(COMPOSE / name)
    env |= {k: str(v) for k, v in (service.get("environment") or {}).items()}
    return {k: _INTERPOLATED.sub("secret-from-dotenv", v) for k, v in env.items()}


def test_every_part_is_a_service_and_images_are_pinned() -> None:
    assert set(services()) == SERVICES
    for name, service in services().items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest" and re.search(r"\d+\.\d+", tag), (name, image)
    assert services()["kafka-1"]["image"].startswith("apache/kafka:")


@pytest.mark.parametrize("name", sorted(facegate_services()))
def test_each_facegate_service_runs_a_real_command(name: str) -> None:
    service = facegate_services()[name]
    build = service["build"]
    assert (COMPOSE / build["context"] / build["dockerfile"]).resolve() == REPO / "Dockerfile"
    argv = service["command"]
    words = [a for a in argv if not a.startswith("-")][:2]
    shown = subprocess.run([FACEGATE, *words, "--help"], capture_output=True, text=True,
                           timeout=60)
    assert shown.returncode == 0, shown.stderr
    for option in (a for a in argv if a.startswith("--") and a != "--help"):
        assert option in shown.stdout, f"{name}: {option} is not an option of {words}"
    assert service["user"] == "10001:10001" and service["read_only"] is True


@pytest.mark.parametrize("name", sorted(facegate_services()))
def test_each_facegate_service_environment_is_read_and_accepted_by_the_code(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = environment(facegate_services()[name])
    check_environment(env, name, monkeypatch)
    state = BrokerSettings().state_dir
    assert f"facegate-state:{state}" in facegate_services()[name]["volumes"]


def test_the_layout_is_multi_host_one_audit_chain_and_a_shared_rights_database() -> None:
    """Every facegate container appends to the one chain topic and shares the rights
    database on PostgreSQL; its password comes from .env, never from this file."""
    pg = services()["postgres"]["environment"]
    for name in facegate_services():
        env = environment(facegate_services()[name])
        assert env["FACEGATE_AUDIT_MODE"] == "topic", name
        url = urlsplit(env["FACEGATE_RIGHTS_DSN"])
        assert (url.hostname, url.port, url.path) == ("postgres", 5432, f"/{pg['POSTGRES_DB']}")
        raw = str(facegate_services()[name]["environment"]["FACEGATE_RIGHTS_DSN"])
        assert url.password == "secret-from-dotenv", f"{name}: a literal password in {raw}"
    writers = services()["audit-writer"]
    assert writers["command"] == ["audit", "writer"] and writers["deploy"]["replicas"] >= 2


def test_kafka_is_three_kraft_nodes_and_the_bootstrap_names_them() -> None:
    kafka = {n: s["environment"] for n, s in services().items() if n.startswith("kafka-")}
    advertised = {
        e["KAFKA_ADVERTISED_LISTENERS"].removeprefix("PLAINTEXT://") for e in kafka.values()
    }
    env = environment(services()["worker"])
    assert set(env["FACEGATE_KAFKA_BOOTSTRAP"].split(",")) == advertised
    voters = {v.split("@")[0]: v.split("@")[1] for v in
              next(iter(kafka.values()))["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")}
    assert {e["KAFKA_NODE_ID"]: f"{n}:9093" for n, e in kafka.items()} == voters
    assert all(e["KAFKA_PROCESS_ROLES"] == "broker,controller" for e in kafka.values())
    assert all(e["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false" for e in kafka.values())
    assert services()["topics"]["command"][:2] == ["stack", "topics"]


def test_the_store_dsn_names_the_postgres_service() -> None:
    pg = services()["postgres"]["environment"]
    for name in facegate_services():
        env = environment(facegate_services()[name])
        assert env["FACEGATE_STORE"] == "postgres"
        url = urlsplit(env["FACEGATE_POSTGRES_DSN"])
        assert (url.hostname, url.port, url.path) == ("postgres", 5432, f"/{pg['POSTGRES_DB']}")
        assert url.username == pg["POSTGRES_USER"]


def test_mosquitto_reads_the_files_facegate_writes_and_the_bridges_reach_it() -> None:
    conf = (COMPOSE / "mosquitto.conf").read_text(encoding="utf-8")
    mount = "/facegate"
    assert "facegate-state:/facegate" in services()["mosquitto"]["volumes"]
    layout = StateLayout(Path(mount))
    tls = TlsFiles.of(layout)
    for key, path in (("password_file", layout.mosquitto / "passwd"),
                      ("acl_file", layout.mosquitto / "acl"), ("cafile", tls.ca_cert),
                      ("certfile", tls.server_cert), ("keyfile", tls.server_key)):
        assert f"\n{key} {path}\n" in conf, key
    listeners = {int(p) for p in re.findall(r"^listener (\d+)", conf, re.M)}
    for name, service in facegate_services().items():
        env = environment(service)
        assert env["FACEGATE_BRIDGE_MQTT_HOST"] == "mosquitto", name
        assert int(env["FACEGATE_BRIDGE_MQTT_PORT"]) in listeners
    published = {int(p.split(":")[-1]) for p in services()["mosquitto"]["ports"]}
    assert published == {8883} and 8883 in listeners  # devices: TLS only
    assert "allow_anonymous false" in conf


def test_bridges_are_one_per_scope_and_cover_distinct_tenants() -> None:
    scopes: list[set[str]] = []
    instances = set()
    for service in facegate_services().values():
        if service["command"][:2] == ["bridge", "run"]:
            instances.add(service["command"][service["command"].index("--instance") + 1])
            scopes.append(set(yaml.safe_load(environment(service)["FACEGATE_BRIDGE_SCOPE"])))
    assert len(instances) == len(scopes) == 2
    assert not set.intersection(*scopes) and all(scopes)


def test_prometheus_scrapes_each_process_on_the_port_its_settings_name() -> None:
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text(encoding="utf-8"))
    targets: set[tuple[str, int]] = set()
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.split(":")
                targets.add((host, int(port)))
        for sd in job.get("dns_sd_configs", []):
            targets |= {(name, int(sd["port"])) for name in sd["names"]}
    expected = set()
    for name, service in facegate_services().items():
        key = METRICS_PORT.get(tuple(service["command"][:2]))
        if key:
            expected.add((name, int(environment(service)[key])))
    assert targets == expected
    web = services()["web"]
    assert web["ports"] == [f"127.0.0.1:8080:{environment(web)['FACEGATE_WEB_PORT']}"]


def test_volumes_are_declared_used_and_bind_mounts_exist() -> None:
    declared = set(compose()["volumes"])
    used = set()
    for service in services().values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), source
            else:
                used.add(source)
    assert used == declared


def test_the_dockerfile_is_multi_stage_pinned_and_runs_as_a_user() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", text, re.M)
    assert [s for _, s in stages] == ["build", "runtime"]
    base = re.search(r"^ARG PYTHON_IMAGE=python:(\S+)$", text, re.M)
    assert base and re.match(r"\d+\.\d+\.\d+-slim-\w+$", base.group(1))
    final = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert "COPY --from=build /opt/facegate /opt/facegate" in final
    assert "npm ci" in text and (REPO / "stream_processor/web/assets/package-lock.json").exists()
    for source in re.findall(r"^COPY (?!--)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (REPO / path).exists(), path
    assert 'ENTRYPOINT ["facegate"]' in final
    state = parse_env_file(COMPOSE / "facegate.env")["FACEGATE_STATE_DIR"]
    assert f"FACEGATE_STATE_DIR={state}" in final and f"-m 0700 {state}" in final


def _mount_target(service: str, source: str) -> str:
    (target,) = [v.split(":")[1] for v in services()[service]["volumes"]
                 if v.split(":")[0] == source]
    return target


def test_prometheus_loads_the_alert_rules_and_grafana_the_dashboards() -> None:
    config = yaml.safe_load((COMPOSE / "prometheus.yml").read_text(encoding="utf-8"))
    rules = _mount_target("prometheus", "../prometheus")
    assert config["rule_files"] == [f"{rules}/*.yml"]
    assert list((DEPLOY / "prometheus").glob("*.yml")), "no alert rules in deploy/prometheus"
    provisioning = COMPOSE / "grafana" / "provisioning"
    dashboards = yaml.safe_load((provisioning / "dashboards/facegate.yml").read_text())
    (provider,) = dashboards["providers"]
    assert provider["options"]["path"] == _mount_target("grafana", "../grafana")
    assert list((DEPLOY / "grafana").glob("*.json")), "no dashboards in deploy/grafana"
    (source,) = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    url = urlsplit(source["url"])
    assert url.hostname in services() and f"127.0.0.1:{url.port}:{url.port}" in (
        services()[url.hostname]["ports"]
    )
