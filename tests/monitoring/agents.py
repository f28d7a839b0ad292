"""Gate agents in the monitoring tests: the port an agent serves /metrics on, read from
its own log once it listens (asked for port 0, so no port is chosen for it that another
process could take before it binds)."""

from __future__ import annotations

from tests.monitoring.evidence import Evidence, wait_seen
from tests.support.edge import AgentProcess

_LISTENING = "metrics and health on"


def serving_port(agent: AgentProcess, timeout_s: float = 60) -> int:
    """Wait until ``agent`` serves /metrics; its port. Fails at once if it exits."""
    seen = Evidence(logs={"agent": agent.log}, procs={"agent": agent.proc})
    wait_seen(lambda: _LISTENING in agent.text(), timeout_s, "the agent's /metrics", seen,
              alive=("agent",))
    line = next(x for x in agent.text().splitlines() if _LISTENING in x)
    return int(line.rsplit(":", 1)[1].split()[0])
