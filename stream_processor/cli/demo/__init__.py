"""``facegate demo``: a property firm's day on the whole local pipeline, told as a story.

Brings the stack up, sets up the firm (real edge agents on replayed photos at one
site, synthetic gates at the others), enrols the residents, then tells the story
step by step (recognition, a policy change, a withdrawal, an erasure with a
witnessed receipt, a key card, the camera notices, the console), printing what
happened and where to look; then steady traffic with progress lines. On Ctrl-C
or after ``--duration`` it stops everything it started, the brokers included.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from stream_processor.cli.demo.cast import free_port
from stream_processor.cli.demo.procs import Children, Cli
from stream_processor.cli.demo.run import (
    prepare,
    progress,
    say,
    start_processes,
    tell,
    write_summary,
)
from stream_processor.cli.demo.scene import Scene
from stream_processor.cli.demo.story import Step
from stream_processor.errors import StackError

if TYPE_CHECKING:
    from stream_processor.stack.settings import StackSettings
    from stream_processor.stack.stack import Stack


@click.command()
@click.option("--duration", type=click.FloatRange(min=0), default=0.0,
              help="seconds to run in all (the story first); 0 = until Ctrl-C")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=2.0,
              show_default=True, help="events/s of each synthetic gate")
@click.option("--pace", type=click.FloatRange(min=0), default=3.0, show_default=True,
              help="seconds between story steps (0: as fast as the pipeline)")
@click.option("--progress-every", type=click.FloatRange(min=1), default=8.0, show_default=True,
              help="seconds between progress lines")
@click.option("--keep-stack", is_flag=True, help="leave Mosquitto and Kafka running afterwards")
def demo(duration: float, rate: float, pace: float, progress_every: float,
         keep_stack: bool) -> None:  # fmt: skip
    """A property firm's day: real and synthetic gates, consent, erasure, key cards,
    notices and the console, told step by step."""
    from stream_processor.runtime.layout import StateLayout
    from stream_processor.stack.settings import StackSettings
    from stream_processor.stack.stack import Stack
    from stream_processor.web.settings import WebSettings

    # The demo shows the pipeline as deployed: Kafka with SASL/SCRAM logins and the ACL
    # plan, the settings' default; FACEGATE_KAFKA_AUTH=false opts out. The default
    # follows a formatted Kafka's mode, so the brokers, the demo's own clients and every
    # process it starts agree; an open one not opted out is refused below.
    settings = StackSettings()
    layout = StateLayout(settings.state_dir)
    web = WebSettings()
    scene = Scene(
        cli=Cli({"FACEGATE_STATE_DIR": str(settings.state_dir)}), state_dir=settings.state_dir,
        demo_dir=settings.state_dir / "demo", store=layout.sqlite_path,
        web_url=web.public_url.rstrip("/"), office_secret=Path(),
        models_dir=Path(os.environ.get("FACEGATE_MODELS_DIR", "deploy/models/cache")),
        pace=pace,
    )  # fmt: skip
    stop = scene.stop
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    scene.demo_dir.mkdir(parents=True, exist_ok=True)
    auth = "on" if settings.kafka_auth else "off"
    say(f"starting Mosquitto and Kafka (state in {settings.state_dir}, Kafka auth {auth}) ...")
    stack = Stack(settings)
    _check_kafka_auth_mode(stack, settings)
    stack.up()
    children = Children(layout.run, {"FACEGATE_STATE_DIR": str(settings.state_dir)})
    started = time.monotonic()
    steps: list[Step] = []
    timed_out = False
    try:
        prepare(scene, settings, children, free_port())
        start_processes(scene, settings, children, rate)
        ticker = threading.Thread(
            target=progress, args=(scene, stop, started, progress_every), daemon=True
        )
        ticker.start()
        steps = tell(scene, stop)
        say("story told; steady traffic now" + ("" if duration else " (Ctrl-C to stop)"))
        while not stop.is_set() and not children.dead():
            if duration and time.monotonic() - started >= duration:
                timed_out = True
                break
            stop.wait(1.0)
        if children.dead():
            say(f"stopped unexpectedly: {', '.join(children.dead())}; see {layout.run}")
    finally:
        interrupted = stop.is_set() and not timed_out
        died = children.dead()
        stop.set()
        say("stopping the gates, the web app, the bridge and the workers ...")
        children.stop()
        ok = write_summary(
            scene.demo_dir / "summary.json", steps, children.pids(), interrupted, died,
            children.logs,
        )
        if keep_stack:
            say("brokers left running; stop them with: make down")
        else:
            stack.down()
            say("brokers stopped; nothing left running")
        say(f"summary: {scene.demo_dir / 'summary.json'} (all steps ok: {ok})")
    if not ok:
        raise SystemExit(1)


def _check_kafka_auth_mode(stack: Stack, settings: StackSettings) -> None:
    """A Kafka formatted with auth off has no SCRAM users and cannot be secured in place."""
    opted_out = os.environ.get("FACEGATE_KAFKA_AUTH", "").lower() in ("false", "0", "no", "off")
    if not opted_out and any(n.formatted_without_users for n in stack.kafka.nodes):
        raise StackError(
            f"the Kafka in {settings.state_dir} was formatted with Kafka auth off and the"
            " demo runs with it on: start afresh (make clean, or remove that folder), use"
            " another FACEGATE_STATE_DIR, or run FACEGATE_KAFKA_AUTH=false facegate demo"
        )
