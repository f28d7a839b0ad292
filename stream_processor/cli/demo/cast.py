"""Before the story: register the gates, give them the site secret, models and photos,
enrol the residents at the site office. Returns what each step printed."""

from __future__ import annotations

from pathlib import Path

from stream_processor.cli.demo.faces import GROUP_PHOTO, photo_path, write_group_faces
from stream_processor.cli.demo.firm import (
    CAST,
    FIRM,
    GROUP_FACES,
    REAL_SITE,
    TENANT,
    VISITOR_PHOTOS,
    real_gates,
    replay_folder,
    synthetic_gates,
    write_gate_config,
)
from stream_processor.cli.demo.scene import Scene
from stream_processor.processor.demo_seed import gate_site_secret
from stream_processor.runtime.devices import register_device
from stream_processor.stack.mosquitto import Mosquitto
from stream_processor.stack.settings import StackSettings


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _replay_names() -> list[str]:
    names = [p for r in CAST for p in r.replay_photos] + list(VISITOR_PHOTOS)
    return list(dict.fromkeys(names))


def faces_dir(scene: Scene) -> Path:
    """Where the faces cut from the group photo go (the demo's own files)."""
    return scene.demo_dir / "faces"


def prepare_real_gates(scene: Scene, settings: StackSettings, models: dict[str, Path]) -> list[str]:
    """Register each real gate, write its config, its camera's replay folder and key."""
    from edge_agent.vision.blazeface import BlazeFaceDetector

    cut = write_group_faces(models["photos"], BlazeFaceDetector(models["detector"]),
                            faces_dir(scene), GROUP_FACES)  # fmt: skip
    lines = [f"{len(cut)} faces cut from the group photo {GROUP_PHOTO} by the gate's own "
             f"detector → {faces_dir(scene)}"]  # fmt: skip
    replay = scene.demo_dir / "camera-replay"
    frames = replay_folder(models["photos"], faces_dir(scene), _replay_names(), replay, seed=17)
    lines.append(f"camera replay: {frames} captures of {len(_replay_names())} real photos, "
                 f"varied for pose, light, blur and scale → {replay}")  # fmt: skip
    for ident in real_gates():
        data = settings.state_dir / "edge" / ident.username
        conf = register_device(settings, ident, broker=Mosquitto(settings))
        gate_site_secret(ident, data)  # the gate's copy of the site secret
        key = data / "gallery.key"
        if not key.exists():
            scene.cli("edge", "gallery", "init-key", "--key-file", str(key))
        files = write_gate_config(
            data, Path(conf), models, replay, free_port(), data / "site.secret", key
        )
        scene.gates[ident.gate] = files
        lines.append(f"{ident.site}/{ident.gate}: real edge agent, config {files.config}")
    office = settings.state_dir / "office" / f"{TENANT}-{REAL_SITE}.secret"
    scene.office_secret = office
    return lines


def enrol_residents(scene: Scene, photos: Path) -> list[str]:
    """The site office enrols each resident the way they chose: face (a minor's with the
    guardian's consent), card/PIN, or a guardian's consent in the ledger only."""
    lines = []
    for r in CAST:
        for gate, files in scene.gates.items():
            if r.enrol_photos:
                args = [
                    a
                    for name in r.enrol_photos
                    for a in ("--photo", str(photo_path(photos, faces_dir(scene), name)))
                ]
                minor = (
                    ["--minor", "--guardian-consent-ref", f"GUARDIAN-{r.resident_id}"]
                    if r.minor
                    else ["--adult"]
                )
                scene.cli("office", "enrol", "--config", str(files.config), "--resident-id",
                          r.resident_id, *args, "--consent-ref", f"FORM-{r.resident_id}",
                          *minor)  # fmt: skip
            elif r.card:
                scene.cli("edge", "enroll", "--config", str(files.config), "--resident-id",
                          r.resident_id, "--card", r.card, "--adult",
                          extra_env={"FACEGATE_EDGE_ENROLL_PIN": r.pin or ""})  # fmt: skip
            if gate == next(iter(scene.gates)) and (r.enrol_photos or r.card):
                lines.append(f"{r.resident_id}: {r.role}")
        if r.minor and not r.enrol_photos:
            scene.cli("consent", "grant", "--tenant", TENANT, "--site", REAL_SITE,
                      "--resident-id", r.resident_id, "--site-secret", str(scene.office_secret),
                      "--purpose", "access_control", "--consent-ref", f"GUARDIAN-{r.resident_id}",
                      "--given-by", "guardian", "--minor")  # fmt: skip
            lines.append(f"{r.resident_id}: {r.role} (consent ledger, given_by guardian)")
    lines.append(f"unknown visitors (never enrolled): {', '.join(VISITOR_PHOTOS)}")
    first = next(iter(scene.gates.values()))
    lines.append(f"look: facegate edge gallery list --config {first.config}")
    return lines


def firm_lines() -> list[str]:
    sites: dict[str, list[str]] = {}
    for ident in [*real_gates(), *synthetic_gates()]:
        sites.setdefault(ident.site, []).append(ident.gate)
    lines = [f"{FIRM}: {len(sites)} sites"]
    for site, gates in sites.items():
        kind = "real edge agents on replayed photos" if site == REAL_SITE else "synthetic gates"
        lines.append(f"  {site}: {', '.join(gates)} ({kind})")
    return lines
