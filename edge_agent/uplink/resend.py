"""When a gate publishes its unconfirmed events again: the re-send back-off.

Pure functions shared by the edge uplink and the load simulator. While PUBACKs come
but confirmations do not (the bridge or Kafka is slow or down), every re-send round
pushes the same backlog into the broker again; doubling the wait between rounds up
to a cap keeps that bounded over a long outage, and jitter spreads a site's gates,
which all stalled at the same moment, so their rounds do not land in step.
"""

from __future__ import annotations

#: Defaults shared by the gate's settings and the simulator: the longest wait between
#: rounds (seconds), the fraction of it jitter may take off, and the most
#: already-sent events one round publishes again.
DEFAULT_CAP_S = 120.0
DEFAULT_JITTER = 0.2
DEFAULT_WINDOW = 2000

#: Beyond this many doublings every realistic cap has long been reached; the bound
#: keeps ``2 ** rounds`` a small float.
_MAX_DOUBLINGS = 40


def resend_delay_s(
    rounds: int, timeout_s: float, cap_s: float, jitter: float, draw: float
) -> float:
    """Seconds to wait after re-send round ``rounds`` (0: no round since the last
    progress) before the next one.

    ``timeout_s * 2**rounds``, never more than ``cap_s`` (nor less than ``timeout_s``
    when the cap is below it), shortened by up to ``jitter`` of itself: ``draw`` in
    [0, 1) picks where, so the result lies in ``[(1 - jitter) * d, d]``.
    """
    if rounds < 0 or timeout_s <= 0 or not 0 <= jitter < 1 or not 0 <= draw < 1:
        raise ValueError("rounds >= 0, timeout_s > 0, 0 <= jitter < 1, 0 <= draw < 1")
    full = min(timeout_s * 2.0 ** min(rounds, _MAX_DOUBLINGS), max(cap_s, timeout_s))
    return full * (1 - jitter * draw)


def rounds_after(rounds: int, progressed: bool) -> int:
    """The back-off state after a confirmation check: progress starts it over."""
    return 0 if progressed else rounds + 1
