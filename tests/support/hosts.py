"""Hosts of a multi-host deployment, played on one machine: each one a set of facegate
processes with a state dir (and environment) of its own, sharing the brokers and
PostgreSQL; and what a failing multi-host test needs to show (every host's log tails).

Also the simulated gates of such a test: devices of tenant ``demo`` on sites of the
test's own, publishing through MQTT to whichever bridge owns their site, and the
per-device counts of what the shared PostgreSQL event store holds of them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.conftest import FACEGATE

#: How much of each log a failing test shows.
TAIL_LINES = 60
#: The Faust workers among the ``facegate`` commands: mode's worker prints the stacks of
#: its threads and asyncio tasks on SIGUSR1 (to what a failing test shows of its log).
FAUST_WORKERS = {("processor", "worker"), ("erasure", "worker")}


@dataclass
class Host:
    """One host: its processes' environment and state dir; logs in ``logs`` (default
    the state dir), one file per process name."""

    name: str
    state: Path
    env: dict[str, str] = field(repr=False)  # secrets (DSNs) never in a report
    logs: Path | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    files: list[IO[bytes]] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.logs if self.logs is not None else self.state

    def start(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop_all
        self.files.append(out)
        proc = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def facegate(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Start a long-running ``facegate`` process of this host."""
        return self.start(name, FACEGATE, *args)

    def ask_for_stacks(self) -> int:
        """SIGUSR1 to this host's running Faust workers; returns how many were asked.
        Only those whose worker began (its spinner hid the cursor): before, SIGUSR1's
        default action would end the process and its evidence."""
        asked = 0
        for name, proc in self.procs.items():
            argv = [str(a) for a in proc.args] if isinstance(proc.args, list | tuple) else []
            began = "\x1b[?25l" in self.log(name)
            if proc.poll() is None and began and tuple(argv[1:3]) in FAUST_WORKERS:
                proc.send_signal(signal.SIGUSR1)
                asked += 1
        return asked

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill9(self, *names: str) -> None:
        for name in names:
            proc = self.procs[name]
            proc.kill()
            proc.wait(30)

    def acknowledged(self, name: str) -> list[tuple[str, int, int, str]]:
        acked = []
        for line in self.log(name).splitlines():
            if line.startswith("["):
                site, i, seq, digest = json.loads(line)
                acked.append((str(site), int(i), int(seq), str(digest)))
        return acked

    def writer_active(self, name: str) -> bool:
        events = [x for x in self.log(name).splitlines() if "audit chain writer:" in x]
        return bool(events) and "took over" in events[-1]

    def cli(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([FACEGATE, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout_s)  # fmt: skip

    def tails(self, lines: int = TAIL_LINES) -> str:
        """The last ``lines`` of each of this host's logs, with each process's state."""
        parts = []
        for name, proc in self.procs.items():
            code = proc.poll()
            state = "running" if code is None else f"exited {code}"
            text = self.log(name).splitlines()[-lines:]
            where = self.log_dir / f"{name}.log"
            parts.append(f"--- host {self.name}: {name} ({state}) {where} ---\n" + "\n".join(text))
        return "\n".join(parts)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for f in self.files:
            f.close()


def tails_of(hosts: Iterable[Host], extra: Iterable[tuple[str, Path]] = ()) -> str:
    """Every host's log tails, and those of ``extra`` named files (e.g. a gate's)."""
    parts = [h.tails() for h in hosts]
    for label, path in extra:
        text = path.read_text(errors="replace").splitlines() if path.exists() else []
        parts.append(f"--- {label} ---\n" + "\n".join(text[-TAIL_LINES:]))
    return "\n".join(parts)


# -- simulated gates -------------------------------------------------------------------


def sim_sites(tag: str, n: int) -> list[str]:
    return [f"s{i}-{tag}" for i in range(n)]


def sim_accounts(
    settings: Any, topics: Any, sites: list[str], per_site: int, edge_dir: Path
) -> list[Any]:
    """Registered devices of tenant ``demo`` on ``sites`` (``per_site`` gates each, in
    ``LoadSpec`` order), with every simulated resident's consent and the demo policy on
    ``topics``' ledgers, written as the office role."""
    from edge_agent.simulate import SimAccount
    from edge_agent.uplink.settings import DeviceConnection
    from edge_agent.wire.topics import DeviceIdentity
    from stream_processor.errors import BrokerError
    from stream_processor.processor.demo_seed import gate_site_secret, seed_demo
    from stream_processor.runtime.devices import register_device
    from stream_processor.runtime.kafka_auth import Role, kafka_python_auth
    from stream_processor.stack.mosquitto import Mosquitto

    broker = Mosquitto(settings)
    accounts, dirs = [], []
    for site in sites:
        for g in range(per_site):
            ident = DeviceIdentity("demo", site, f"gate-{g}", "sim")
            path = Path(register_device(settings, ident, tls=False, broker=broker))
            data_dir = edge_dir / ident.username
            secret = gate_site_secret(ident, data_dir)
            accounts.append(SimAccount(DeviceConnection.load(path), secret))
            dirs.append((ident, data_dir))
    deadline = time.monotonic() + 60
    while True:
        try:
            seed_demo(settings.kafka_bootstrap, topics, dirs, residents=200, consenting=1.0,
                      auth=kafka_python_auth(settings, Role.OFFICE))  # fmt: skip
            return accounts
        except BrokerError:
            # A topic created a moment ago can have no partition leader yet on a busy
            # machine: its metadata says "no such topic" for a while.
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


Counts = dict[tuple[str, str, str, str], tuple[int, int, int, int]]


def stored_per_device(dsn: str, tenant: str, sites: list[str]) -> Counts:
    """(tenant, site, gate, device) -> (rows, distinct seqs, lowest seq, highest seq) of
    ``sites`` in the PostgreSQL event store at ``dsn``."""
    import psycopg

    with psycopg.connect(dsn, connect_timeout=10) as db:
        try:
            rows = db.execute(
                "SELECT tenant, site, gate, device, count(*), count(DISTINCT seq), min(seq),"
                " max(seq) FROM events WHERE tenant = %s AND site = ANY(%s)"
                " GROUP BY tenant, site, gate, device",
                (tenant, sites),
            ).fetchall()
        except psycopg.errors.UndefinedTable:
            return {}  # no worker has opened the store yet
    return {(r[0], r[1], r[2], r[3]): (r[4], r[5], r[6], r[7]) for r in rows}


def stored_of(dsn: str, tenant: str, site: str, subject: str) -> tuple[int, int]:
    """(rows, distinct event ids) of ``subject`` at ``site`` in the event store."""
    import psycopg

    with psycopg.connect(dsn, connect_timeout=10) as db:
        row = db.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM events"
            " WHERE tenant = %s AND site = %s AND subject = %s",
            (tenant, site, subject),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


@contextmanager
def tails_on_failure(
    hosts: Iterable[Host], extra: Iterable[tuple[str, Path]] = ()
) -> Iterator[None]:
    """On any failure inside, print every host's log tails (pytest shows them beside the
    failure): a timeout alone does not say which process stalled, or why."""
    try:
        yield
    except BaseException:
        hosts = list(hosts)
        if sum(h.ask_for_stacks() for h in hosts):
            time.sleep(2)  # the stacks are written by each worker's event loop
        print(tails_of(hosts, extra), file=sys.stderr)
        raise


class SimulatedGates:
    """``run_load`` of ``accounts`` (sites × gates in ``LoadSpec`` order) in a thread
    while the block runs: entering waits until events flow, leaving stops the gates and
    waits for their drain (every event confirmed by a bridge, or the drain timeout)."""

    def __init__(self, accounts: list[Any], log: Path, sites: int = 2, rate: float = 100) -> None:
        from edge_agent.simulate import LoadSpec

        self._accounts = accounts
        self._log = log
        self.spec = LoadSpec(sites=sites, devices_per_site=len(accounts) // sites, rate=rate,
                             duration_s=900, processes=1, confirm_timeout_s=2,
                             drain_timeout_s=90, seed=11)  # fmt: skip
        self._stop = threading.Event()
        self._flowing = threading.Event()
        self._result: list[Any] = []
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="simulated-gates", daemon=True)

    def _run(self) -> None:
        from edge_agent.simulate import run_load

        with self._log.open("a") as out:

            def progress(p: Any) -> None:
                print(f"t={p.elapsed_s:.1f}s made={p.made} published={p.published}"
                      f" confirmed={p.confirmed} connected={p.connected}/{p.devices}",
                      file=out, flush=True)  # fmt: skip
                if p.confirmed >= 100:
                    self._flowing.set()

            try:
                self._result.append(run_load(self.spec, self._accounts, self._stop, progress))
            except BaseException as exc:  # handed to the test thread in report()
                print(f"run_load failed: {exc!r}", file=out, flush=True)
                self._error.append(exc)
            finally:
                self._flowing.set()

    def __enter__(self) -> SimulatedGates:
        self._thread.start()
        assert self._flowing.wait(120), "the simulated gates had nothing confirmed in 120 s"
        assert not self._error, f"the simulated gates failed: {self._error[0]!r}"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.spec.drain_timeout_s + 30)

    def report(self) -> Any:
        assert not self._thread.is_alive(), "the simulated gates did not finish their drain"
        if self._error:
            raise self._error[0]
        (report,) = self._result
        return report
