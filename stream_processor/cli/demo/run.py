"""One demo run: the stack, the firm's processes, the story, then steady traffic."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import click

from stream_processor.cli.demo import cast, public, story
from stream_processor.cli.demo.firm import synthetic_gates
from stream_processor.cli.demo.procs import Children, DemoStepError
from stream_processor.cli.demo.progress import snapshot
from stream_processor.cli.demo.scene import Scene
from stream_processor.cli.demo.witnessing import start_witness
from stream_processor.errors import BrokerError
from stream_processor.stack.settings import StackSettings

STEPS: tuple[Callable[[Scene], story.Step], ...] = (
    story.recognition, story.policy_change, story.withdrawal, story.erasure, story.keycard,
    public.notice, public.console,
)  # fmt: skip

#: The processes whose logs tell why a step failed (the summary names their files).
_GATES = ("gate-lobby", "gate-garage")
STEP_LOGS: dict[str, tuple[str, ...]] = {
    "recognition": (*_GATES, "bridge", "processor"),
    "policy": ("processor",),
    "policy_change": ("processor",),  # the key of a step whose command failed
    "withdrawal": ("processor", "bridge", *_GATES),
    "erasure": ("erasure", "processor", "bridge", *_GATES, "witness"),
    "keycard": ("processor", "bridge", *_GATES),
    "notice": ("web",),
    "console": ("web",),
}


def say(text: str) -> None:
    click.echo(f"[demo] {text}")


def start_processes(
    scene: Scene, settings: StackSettings, children: Children, rate: float
) -> None:
    """Bridge, worker, erasure worker, web app, then the gates (real and synthetic)."""
    from stream_processor.runtime.devices import register_device
    from stream_processor.stack.mosquitto import Mosquitto

    synth = [(i, settings.state_dir / "edge" / i.username) for i in synthetic_gates()]
    for name, args in (("bridge", ("bridge", "run")), ("processor", ("processor", "worker")),
                       ("erasure", ("erasure", "worker")), ("web", ("web", "serve"))):
        children.start(name, *args)  # fmt: skip
    for gate, files in scene.gates.items():
        children.start(f"gate-{gate}", "edge", "run", "--config", str(files.config))
    for ident, data in synth:
        conf = register_device(settings, ident, broker=Mosquitto(settings))
        children.start(f"gate-{ident.site}-{ident.gate}", "edge", "simulate", "--device-config",
                       str(conf), "--data-dir", str(data), "--rate", str(rate))  # fmt: skip
    up = scene.wait(lambda: public._get(f"{scene.web_url}/healthz", None)[0] == 200, 60)
    say(f"{len(children.procs)} processes running (logs in {children.logs}); web app "
        f"{'up' if up else 'NOT healthy'} at {scene.web_url}")  # fmt: skip


def tell(scene: Scene, stop: threading.Event) -> list[story.Step]:
    steps: list[story.Step] = []
    for i, fn in enumerate(STEPS, 1):
        if stop.is_set():
            break
        try:
            step = fn(scene)
        except DemoStepError as exc:
            # A command interrupted by Ctrl-C, or one that failed: the story says so and
            # goes on (or stops, on Ctrl-C); the processes are stopped either way.
            step = story.Step(fn.__name__, fn.__name__.replace("_", " "), False, [str(exc)])
        if stop.is_set() and not step.ok:
            click.echo(f"\n[story {i}/{len(STEPS)}] {step.title}: interrupted")
            break
        steps.append(step)
        mark = "done" if step.ok else "FAILED"
        click.echo(f"\n[story {i}/{len(STEPS)}] {step.title}: {mark}")
        for line in step.lines:
            click.echo(f"    {line}")
        stop.wait(scene.pace)
    return steps


def progress(scene: Scene, stop: threading.Event, started: float, every_s: float) -> None:
    while not stop.wait(every_s):
        say(snapshot(scene.store).line(time.monotonic() - started))


def _step_doc(step: story.Step, logs: Path) -> dict[str, object]:
    """A step as the summary keeps it; a failed one with what it printed and the logs to
    read (only then: the console step's lines hold its sign-in tokens)."""
    doc: dict[str, object] = {"key": step.key, "title": step.title, "ok": step.ok,
                              "facts": step.facts}  # fmt: skip
    if not step.ok:
        names = STEP_LOGS.get(step.key, ())
        doc["detail"] = step.lines
        doc["logs"] = [str(logs / f"{name}.log") for name in names]
    return doc


def write_summary(
    path: Path, steps: list[story.Step], pids: list[int], interrupted: bool, dead: list[str],
    logs: Path,
) -> bool:  # fmt: skip
    """True when every step told succeeded, all were told unless Ctrl-C cut it short, and
    no process died on its own."""
    ok = all(s.ok for s in steps) and (interrupted or len(steps) == len(STEPS))
    ok = ok and not dead
    doc = {
        "ok": ok,
        "died_early": dead,
        "interrupted": interrupted,
        "steps": [_step_doc(s, logs) for s in steps],
        "pids": pids,
        "logs": str(logs),
    }
    path.write_text(json.dumps(doc, indent=2, default=str))
    return ok


def prepare(scene: Scene, settings: StackSettings, children: Children, port: int) -> None:
    """The firm, its real gates and residents, and the witness (before the processes that
    push to it start)."""
    from edge_agent.assets.fetch import fetch_all
    from stream_processor.processor.demo_seed import seed_demo
    from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
    from stream_processor.runtime.settings import BrokerSettings, Topics

    for line in cast.firm_lines():
        say(line)
    synth = [(i, settings.state_dir / "edge" / i.username) for i in synthetic_gates()]
    auth = kafka_python_auth(BrokerSettings(), Role.OFFICE)
    # A topic 'stack up' just created can be missing from a new client's metadata for a
    # moment on a loaded machine: ask again for a while before calling it an error.
    deadline = time.monotonic() + 60
    while True:
        try:
            grants = seed_demo(settings.kafka_bootstrap, Topics(), synth, auth=auth)
            break
        except BrokerError:
            if time.monotonic() >= deadline or scene.stop.wait(2.0):
                raise
    say(f"policy v1 applied; {grants} residents of the synthetic sites consented (80 %)")
    models = fetch_all(scene.models_dir)
    for line in cast.prepare_real_gates(scene, settings, models):
        say(line)
    # The web app serves the notice pages from this registry (and is unhealthy without it).
    say(f"camera registry of riverside: {public.write_cameras(scene)}")
    say("the riverside office enrols its residents:")
    for line in cast.enrol_residents(scene, models["photos"]):
        click.echo(f"    {line}")
    env = {"FACEGATE_STATE_DIR": str(settings.state_dir)}
    scene.witness_key, audit_env = start_witness(scene.cli, children, env, scene.web_url, port)
    children.env.update(audit_env)
    scene.cli.env.update(audit_env)
    say(f"independent witness on port {port}, key {scene.witness_key}")
