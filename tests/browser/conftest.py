"""A running pipeline with simulated gates and the web app, and a real headless Chromium
(Debian's, driven by Selenium through Debian's chromedriver) to look at it."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FACEGATE, Pipeline, StackHandle, free_ports, wait_for

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CAMERAS = REPO / "deploy" / "config" / "cameras.example.yaml"
#: Screenshots land here (git-ignored ``build/``), or under FACEGATE_TEST_ARTIFACTS.
ARTIFACTS = Path(os.environ.get("FACEGATE_TEST_ARTIFACTS", REPO / "build" / "test-artifacts"))
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
]

POLICY = """\
tenant: acme
legal_ceiling: 3y
purposes:
  access_control:
    description: open the gate for residents and keep a log of who passed
camera_purposes: [access_control]
retention:
  face_match:   {access_control: 30d}
  key_card:     {access_control: 90d}
  pin:          {access_control: 90d}
  manual_open:  {access_control: 90d}
  unknown_face: {access_control: 0}
"""


def ensure_browser() -> None:
    from stream_processor.runtime.system import ensure_debian_packages
    from stream_processor.web.assets import ensure_assets

    ensure_debian_packages({"chromium": "chromium", "chromedriver": "chromium-driver"})
    ensure_assets()


#: Profile folders (under /tmp) of the browsers started and not yet removed.
_PROFILES: set[Path] = set()


def _remove_profile(profile: Path) -> None:
    shutil.rmtree(profile, ignore_errors=True)
    _PROFILES.discard(profile)


def new_driver(width: int = 1280, height: int = 900) -> Any:
    """A headless Chromium with a profile folder of its own, removed by ``quit()`` (or at
    the end of the session, for a driver a failing test never quit)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--window-size={width},{height}")
    profile = Path(tempfile.mkdtemp(prefix="facegate-chromium-"))
    _PROFILES.add(profile)
    opts.add_argument(f"--user-data-dir={profile}")
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    except BaseException:
        _remove_profile(profile)
        raise
    quit_browser = driver.quit

    def quit_and_remove_profile() -> None:
        try:
            quit_browser()
        finally:
            _remove_profile(profile)

    driver.quit = quit_and_remove_profile
    return driver


@pytest.fixture(scope="session", autouse=True)
def _no_browser_profile_left() -> Iterator[None]:
    yield
    for profile in list(_PROFILES):
        _remove_profile(profile)


@dataclass
class Console:
    p: Pipeline
    base: str

    def token(self, tenant: str, role: str) -> str:
        done = subprocess.run(
            [
                FACEGATE,
                "web",
                "token",
                "create",
                "--tenant",
                tenant,
                "--role",
                role,
                "--label",
                f"{tenant} {role}",
            ],
            env=self.p.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def shot(self, driver: Any, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        driver.save_screenshot(str(path))
        return path


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - local test server
            return int(resp.status)
    except OSError:
        return 0


@pytest.fixture(scope="module")
def console_stack(
    running_stack: StackHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    """acme/north-garden with two simulated gates (main, east), bridge, processor, web;
    shared by the module's tests (starting it is most of their time)."""
    pipeline = Pipeline(running_stack, uuid.uuid4().hex[:10], tmp_path_factory.mktemp("console"))
    pipeline.create_topics()
    try:
        yield from _run_console(pipeline)
    finally:
        pipeline.stop_all()


def _run_console(pipeline: Pipeline) -> Iterator[Console]:
    from edge_agent.wire.topics import DeviceIdentity
    from stream_processor.runtime.devices import register_device
    from stream_processor.stack.mosquitto import Mosquitto
    from tests.conftest import prepare_bridge_session

    ensure_browser()
    settings = pipeline.stack.settings()
    cameras = pipeline.tmp / "cameras.yaml"
    shutil.copy(EXAMPLE_CAMERAS, cameras)
    (port,) = free_ports(1)
    pipeline.extra_env.update(
        {
            "FACEGATE_WEB_PORT": str(port),
            "FACEGATE_WEB_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "FACEGATE_WEB_CAMERAS_PATH": str(cameras),
            "FACEGATE_PROCESSOR_SWEEP_INTERVAL_S": "2",
            "FACEGATE_WEB_DEVICE_OFFLINE_AFTER_S": "10",
        }
    )
    compliance = pipeline.tmp / "compliance.yaml"
    compliance.write_text(
        "version: 1\npia:\n  acme:\n    north-garden: {reference: PIA-2026-07, date: 2026-05-01}\n"
    )
    pipeline.extra_env["FACEGATE_WEB_COMPLIANCE_PATH"] = str(compliance)
    policy = pipeline.tmp / "policy.yaml"
    policy.write_text(POLICY)
    done = subprocess.run(
        [FACEGATE, "policy", "apply", str(policy)],
        env=pipeline.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    prepare_bridge_session(pipeline)
    pipeline.start("bridge", "run", name="bridge")
    pipeline.start("processor", "worker", name="processor")
    secret = pipeline.tmp / "north-garden.secret"
    _facegate(
        pipeline,
        "site",
        "secret",
        "create",
        "--tenant",
        "acme",
        "--site",
        "north-garden",
        "--out",
        str(secret),
    )
    for gate in ("main", "east"):
        ident = DeviceIdentity("acme", "north-garden", gate, "cam-1")
        conf = register_device(settings, ident, tls=False, broker=Mosquitto(settings))
        (pipeline.tmp / gate).mkdir()
        _facegate(
            pipeline,
            "site",
            "secret",
            "export-for-gate",
            "--secret",
            str(secret),
            "--device-config",
            str(conf),
            "--out",
            str(pipeline.tmp / gate / "site.secret"),
        )
        pipeline.start(
            "edge",
            "simulate",
            "--device-config",
            str(conf),
            "--data-dir",
            str(pipeline.tmp / gate),
            "--rate",
            "4",
            "--status-every",
            "1",
            name=f"gate-{gate}",
        )
    pipeline.start("web", "serve", name="web")
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _get(base + "/api/v1/openapi.json") == 200, 90, "the web app")
    yield Console(pipeline, base)


def _facegate(pipeline: Pipeline, *args: str) -> None:
    done = subprocess.run(
        [FACEGATE, *args], env=pipeline.env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    wait_for(check, timeout_s, what, interval_s=0.1)
