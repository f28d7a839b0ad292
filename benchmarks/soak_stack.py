"""The soak's running system on a private stack: the facegate processes (bridge,
processor workers, erasure worker, web app) started through the CLI with
``_pipeline.start_component``, Prometheus scraping them, and the four faults as
actions on it (restart a process, kill -9 Mosquitto, restart the Kafka node)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from _machine import BenchStack, free_ports
from _pipeline import Component, broker_pids, check_alive, start_component, stop_components

#: How long a restarted process must stay up to count as started (it exits at once
#: on a bad setting or a broker it cannot reach).
SETTLE_S = 3.0


def metrics_env(workers: int) -> dict[str, str]:
    """Free ports for every process's metrics (and the web app), and Prometheus: the
    stack's Prometheus scrapes them as in production; none of the default ports."""
    names = ["FACEGATE_PROMETHEUS_PORT", "FACEGATE_BRIDGE_METRICS_PORT",
             "FACEGATE_ERASURE_METRICS_PORT", "FACEGATE_WEB_PORT"]  # fmt: skip
    ports = free_ports(len(names) + workers)
    env = dict(zip(names, map(str, ports), strict=False))
    env["FACEGATE_PROMETHEUS_SCRAPE_INTERVAL_S"] = "5"
    env["SOAK_WORKER_METRICS_PORTS"] = ",".join(map(str, ports[len(names) :]))
    return env


@dataclass
class SoakSystem:
    """The processes of one soak; ``restart(name)`` is a fault, ``pids()`` what to sample."""

    st: BenchStack
    workers: int
    log: Callable[[str], None] = print
    components: dict[str, Component] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)
    restarting: set[str] = field(default_factory=set)
    crashes: list[dict[str, object]] = field(default_factory=list)

    def argv(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        """Each process: its facegate arguments and its own environment additions."""
        worker_ports = self.st.env["SOAK_WORKER_METRICS_PORTS"].split(",")
        out: dict[str, tuple[list[str], dict[str, str]]] = {
            "bridge": (["bridge", "run"], {}),
            "erasure": (["erasure", "worker"], {}),
            "web": (["web", "serve"], {}),
        }
        for i in range(1, self.workers + 1):
            out[f"worker-{i}"] = (
                ["processor", "worker", "--worker-name", f"w{i}"],
                {"FACEGATE_PROCESSOR_METRICS_PORT": worker_ports[i - 1]},
            )
        return out

    def start(self, name: str) -> Component:
        args, extra = self.argv()[name]
        comp = start_component(name, args, {**self.st.env, **extra}, self.st.state / "bench-logs")
        self.components[name] = comp
        return comp

    def start_all(self) -> None:
        for name in self.argv():
            self.start(name)
        time.sleep(SETTLE_S)
        check_alive(self.components.values())

    def restart(self, name: str) -> None:
        """SIGTERM (the process's clean shutdown), wait for it to exit, start it again."""
        self.restarting.add(name)
        try:
            stop_components([self.components[name]], timeout_s=60)
            comp = self.start(name)
            self.restarts[name] = self.restarts.get(name, 0) + 1
            time.sleep(SETTLE_S)
            check_alive([comp])
        finally:
            self.restarting.discard(name)

    def kill_mosquitto(self) -> None:
        """kill -9 and start again: what was not yet autosaved is gone from the broker;
        the devices' resends and the bridge's persistent session must make up for it."""
        from stream_processor.stack.mosquitto import Mosquitto

        broker = Mosquitto(self.st.settings)
        broker.kill()
        broker.up()

    def restart_kafka(self) -> None:
        """A controlled stop of the (single) KRaft node, then start it and wait for its
        readiness line: producers and consumers must ride it out."""
        from stream_processor.stack.cluster import KafkaCluster

        node = KafkaCluster(self.st.settings).node(1)
        node.down()
        node.up()

    def fault_actions(self) -> dict[str, Callable[[], None]]:
        return {
            "worker": lambda: self.restart("worker-1"),
            "bridge": lambda: self.restart("bridge"),
            "mosquitto": self.kill_mosquitto,
            "kafka": self.restart_kafka,
        }

    def check(self, t_s: float) -> None:
        """A process that exited outside a fault is a crash: recorded with its exit code
        and last log lines, and started again, as its systemd unit (Restart=on-failure)
        would; the run goes on and the result shows it."""
        for name, comp in list(self.components.items()):
            if name in self.restarting or comp.proc.poll() is None:
                continue
            lines = comp.log.read_text(errors="replace").splitlines()[-5:]
            crash = {"process": name, "at_s": round(t_s, 1), "exit": comp.proc.returncode,
                     "log_tail": lines}  # fmt: skip
            self.crashes.append(crash)
            self.log(f"[{t_s:8.1f}s] CRASH {name} exited {comp.proc.returncode}: "
                     + " | ".join(lines[-2:]))  # fmt: skip
            self.start(name)

    def pids(self) -> dict[str, int | None]:
        """The current pid of every process to sample (brokers found by state dir)."""
        brokers = broker_pids(self.st.state)
        out: dict[str, int | None] = {
            name: (c.pid if c.proc.poll() is None else None) for name, c in self.components.items()
        }
        for name in ("mosquitto", "kafka", "postgres", "prometheus"):
            if name in brokers or name != "postgres":
                out[name] = brokers.get(name)
        return out

    def stop(self) -> None:
        stop_components(self.components.values(), timeout_s=60)
