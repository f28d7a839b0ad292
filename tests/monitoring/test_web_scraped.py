"""The web app announces its /metrics; served over HTTPS (FACEGATE_WEB_TLS) it is
scraped over HTTPS, verified against the project CA — no plain-text fallback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from stream_processor.runtime.targets import targets_dir
from stream_processor.stack.monitoring.prometheus import Prometheus
from stream_processor.stack.monitoring.settings import MonitoringSettings
from tests.conftest import FACEGATE, free_ports
from tests.monitoring.evidence import Evidence, wait_seen
from tests.monitoring.prom import Prom
from tests.support.web import EXAMPLE_CAMERAS, POLICY

pytestmark = pytest.mark.component


def _targets(prometheus: Prometheus) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{prometheus.url}/api/v1/targets", timeout=5) as r:  # noqa: S310
        active: list[dict[str, object]] = json.loads(r.read())["data"]["activeTargets"]
    return [t for t in active if t["labels"]["job"] == "facegate-web"]  # type: ignore[index]


def test_the_web_app_over_https_is_scraped_over_https(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "config" / "policies").mkdir(parents=True)
    shutil.copy(EXAMPLE_CAMERAS, state / "config" / "cameras.yaml")
    (state / "config" / "policies" / "acme.yaml").write_text(
        POLICY.format(tenant="acme", face="30d")
    )
    from stream_processor.runtime.kafka_auth import ensure_passwords

    ensure_passwords(state)  # the logins a 'stack up' makes (Kafka auth is on by default)
    web_port, prom_port = free_ports(2)
    env = {
        **os.environ,
        "FACEGATE_STATE_DIR": str(state),
        "FACEGATE_WEB_PORT": str(web_port),
        "FACEGATE_WEB_PUBLIC_URL": f"https://127.0.0.1:{web_port}",
        "FACEGATE_WEB_RETENTION_SOURCE": "file",
        "FACEGATE_WEB_TLS": "true",
    }
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 - closed below
    web = subprocess.Popen([FACEGATE, "web", "serve"], env=env, stdout=log, stderr=log)
    prometheus = Prometheus(
        state, MonitoringSettings(port=prom_port, scrape_interval_s=1, evaluation_interval_s=1)
    )
    seen = Evidence(Prom(prometheus.url, env, state), instances=(f"127.0.0.1:{web_port}",),
                    jobs=("facegate-web",), logs={"web": tmp_path / "web.log"}, procs={"web": web})
    try:
        wait_seen(lambda: any(targets_dir(state).glob("facegate-web-*.json")), 60,
                  "the web app's announcement", seen, alive=("web",))
        prometheus.up()  # after the web app made the project CA it is served under
        wait_seen(lambda: [t["health"] for t in _targets(prometheus)] == ["up"], 30,
                  "the web app scraped", seen, alive=("web",))
        [target] = _targets(prometheus)
        assert str(target["scrapeUrl"]).startswith(f"https://127.0.0.1:{web_port}/metrics")
    finally:
        prometheus.down()
        web.terminate()
        web.wait(30)
        log.close()
    assert not any(targets_dir(state).glob("facegate-web-*.json"))  # withdrawn on stop
