"""Does the notice say what the policy enforces? (pure)

A notice that names fewer purposes than the policy allows at a camera hides
a use of the data: that is an error. One that names a purpose the policy
does not allow there promises a use that never happens (events for it are
discarded): a warning, the notice should be corrected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stream_processor.notices.config import SiteNotice


@dataclass(frozen=True)
class Mismatch:
    camera: str
    severity: str  # "error" | "warning"
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: camera {self.camera}: {self.message}"


AllowedPurposes = Callable[[str, str, str], frozenset[str]]


def check_site(site: SiteNotice, allowed: AllowedPurposes) -> list[Mismatch]:
    """``allowed(site, gate, device)``: the purposes the policy in force allows at a
    camera (``CompiledPolicy.allowed_purposes``)."""
    out: list[Mismatch] = []
    for cam in site.cameras:
        enforced = allowed(site.site, cam.gate, cam.device or "")
        stated = set(cam.purposes)
        hidden = sorted(enforced - stated)
        if hidden:
            out.append(
                Mismatch(
                    cam.id,
                    "error",
                    f"the policy allows purposes {hidden} the notice does not state",
                )
            )
        unused = sorted(stated - enforced)
        if unused:
            out.append(
                Mismatch(
                    cam.id,
                    "warning",
                    f"the notice states purposes {unused} the policy does not allow here "
                    "(their events are discarded)",
                )
            )
    return out


def check_custom_purposes(site: SiteNotice, custom: frozenset[str]) -> list[Mismatch]:
    """A custom purpose (declared by the policy with its own legal basis, not shipped by
    facegate) must carry that legal basis on the notice, beside its description."""
    return [
        Mismatch(
            cam.id,
            "error",
            f"purpose {p!r} is custom: the notice must state its legal basis "
            "(purposes[].legal_basis)",
        )
        for cam in site.cameras
        for p in cam.purposes
        if p in custom and site.purpose(p).legal_basis is None
    ]
