"""The story's steps, in order. Each runs the commands an operator would type, checks
that what it claims happened (the store, the gates' galleries, the receipt), and
returns what it showed and where to look."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

from edge_agent.pseudonym import load_site_secret, pseudonym
from stream_processor.cli.demo.firm import CAST, KEYCARD_NUMBER, REAL_SITE, TENANT
from stream_processor.cli.demo.progress import refused_at, subject_events
from stream_processor.cli.demo.scene import Scene, commands_done, gate_templates
from stream_processor.processor.demo_seed import DEMO_POLICY


@dataclass
class Step:
    key: str
    title: str
    ok: bool = False
    lines: list[str] = field(default_factory=list)
    facts: dict[str, object] = field(default_factory=dict)


def subject_of(scene: Scene, resident_id: str) -> str:
    return pseudonym(load_site_secret(scene.office_secret, TENANT, REAL_SITE), resident_id)


def _site_args(scene: Scene, resident_id: str) -> list[str]:
    return ["--tenant", TENANT, "--site", REAL_SITE, "--resident-id", resident_id,
            "--site-secret", str(scene.office_secret)]  # fmt: skip


def recognition(scene: Scene) -> Step:
    """The real gates recognise the enrolled residents; the card and PIN open the lobby."""
    step = Step("recognition", "Residents pass the riverside gates")
    faces = {r.resident_id: subject_of(scene, r.resident_id) for r in CAST if r.replay_photos}
    card_user = next(r for r in CAST if r.card)
    with scene.gates["lobby"].credentials.open("a") as reader:
        reader.write(f"card {card_user.card}\npin {card_user.pin}\n")

    def seen() -> bool:
        ok = all(subject_events(scene.store, REAL_SITE, "face_match", s) for s in faces.values())
        cards = subject_events(scene.store, REAL_SITE, "key_card", subject_of(scene, "R-103"))
        return ok and cards > 0 and refused_at(scene.store, REAL_SITE, "unknown_face") > 0

    step.ok = scene.wait(seen, 120)
    for rid, subject in faces.items():
        n = subject_events(scene.store, REAL_SITE, "face_match", subject)
        step.lines.append(f"{rid} recognised by face: {n} stored face_match events as {subject}")
        step.facts[f"face_match_{rid}"] = n
    n = subject_events(scene.store, REAL_SITE, "key_card", subject_of(scene, "R-103"))
    step.lines.append(f"R-103 opened the lobby with card {card_user.card}: {n} key_card events")
    unknown = refused_at(scene.store, REAL_SITE, "unknown_face")
    step.lines.append(f"unknown visitors at the gates: {unknown} unknown faces, counted and "
                      "never stored (no template, no pseudonym)")  # fmt: skip
    step.facts["unknown_faces_counted"] = unknown
    step.lines.append(f"look: {scene.store} (events), logs of gate-lobby / gate-garage")
    return step


def policy_change(scene: Scene) -> Step:
    """Face events kept 14 days instead of 30, manual openings no longer kept: the dry run
    shows what the change would delete, then it is applied."""
    step = Step("policy", "New policy: face events 14 days (was 30), manual openings not kept")
    doc = copy.deepcopy(DEMO_POLICY)
    doc["retention"]["face_match"]["access_control"] = "14d"
    doc["retention"]["manual_open"]["access_control"] = 0
    path = scene.demo_dir / "policy-demo.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    dry = scene.cli("policy", "apply", str(path), "--dry-run")
    step.lines += [f"$ {dry.shown}", *("  " + x for x in dry.stdout.strip().splitlines())]
    done = scene.cli("policy", "apply", str(path), "--comment", "demo: shorter retention")
    step.lines += [f"$ {done.shown}", *("  " + x for x in done.stdout.strip().splitlines())]
    total = next((x.split()[-1] for x in dry.stdout.splitlines() if x.strip().startswith("total")),
                 "0")  # fmt: skip
    step.ok = "would delete" in dry.stdout and "applied policy" in done.stdout
    step.facts["dry_run_would_delete"] = int(total) if total.isdigit() else None
    step.lines.append(f"look: facegate policy history --tenant {TENANT}")
    return step


#: How long a gate's state may take to follow a command on a loaded 2-core machine: the
#: command crosses the CLI's Kafka login, the bridge's downlink and the agent's loop.
GATE_BOUND_S = 120.0


def _templates(scene: Scene) -> dict[str, int | None]:
    return {gate: gate_templates(files.http_port) for gate, files in scene.gates.items()}


def _read_all(scene: Scene, read: Callable[[int], int | None]) -> dict[str, int | None]:
    """``read`` of every gate, asked again for a while if one does not answer (a busy agent
    can miss one scrape); a gate still silent stays None."""
    values: dict[str, int | None] = {}

    def answered() -> bool:
        values.update({g: read(f.http_port) for g, f in scene.gates.items()})
        return all(v is not None for v in values.values())

    scene.wait(answered, 30)
    return values


def withdrawal(scene: Scene) -> Step:
    """R-101 withdraws her face consent: her templates leave both gates."""
    step = Step("withdrawal", "R-101 withdraws her consent; her face leaves the gates")
    before = _read_all(scene, gate_templates)
    done = scene.cli("consent", "withdraw", *_site_args(scene, "R-101"))
    gone = len(next(r for r in CAST if r.resident_id == "R-101").enrol_photos)

    def dropped() -> bool:
        now = _templates(scene)
        return all((now[g] or 0) <= (before[g] or 0) - gone for g in now)

    step.ok = scene.wait(dropped, GATE_BOUND_S) and all(v is not None for v in before.values())
    after = _templates(scene)
    step.lines.append(f"$ {done.shown}")
    for gate, files in scene.gates.items():
        step.lines.append(f"{gate}: face templates {before[gate]} → {after[gate]} "
                          f"(http://127.0.0.1:{files.http_port}/metrics)")  # fmt: skip
    step.facts.update(templates_before=before, templates_after=after)
    return step


def erasure(scene: Scene) -> Step:
    """R-101 then asks for erasure: signed receipt, cosigned by the witness, verified."""
    step = Step("erasure", "R-101 asks for erasure; a signed, witnessed receipt")
    req = scene.cli("erasure", "request", *_site_args(scene, "R-101"), "--wait", "120")
    request_id = req.stdout.strip().splitlines()[0]
    receipt = scene.demo_dir / f"receipt-{request_id}.json"
    scene.cli("erasure", "receipt", request_id, "--out", str(receipt))
    verify = scene.cli("audit", "verify", "--receipt", str(receipt),
                       "--witness-key", scene.witness_key)  # fmt: skip
    left = subject_events(scene.store, REAL_SITE, "face_match", subject_of(scene, "R-101"))
    witnessed = "witnessed by" in verify.stdout
    step.ok = witnessed and left == 0 and "verified" in verify.stdout
    step.lines += [f"$ {req.shown}", f"$ facegate erasure receipt {request_id} --out {receipt}",
                   f"$ {verify.shown}", *("  " + x for x in verify.stdout.strip().splitlines())]
    step.lines.append(f"R-101's stored face events left: {left}")
    step.facts.update(request_id=request_id, receipt=str(receipt), verified=step.ok,
                      witnessed=witnessed, events_left=left)  # fmt: skip
    return step


def keycard(scene: Scene) -> Step:
    """R-102 asks for a key card instead of his face: template gone, the card opens.

    The fulfilment also withdraws his face consent, and the processor's own withdrawal
    command can reach the gates first and drop the templates before the card is
    registered: the card is shown only once every gate has carried out register_card."""
    step = Step("keycard", "R-102 asks for a key card; the card replaces his face")
    opened = scene.cli("keycard", "request", *_site_args(scene, "R-102"), "--unit", "B-12")
    request_id = opened.stdout.split("request ")[1].split()[0]
    before = _read_all(scene, gate_templates)
    registered = _read_all(scene, lambda port: commands_done(port, "register_card"))
    done = scene.cli("keycard", "fulfil", request_id, "--card", KEYCARD_NUMBER,
                     "--site-secret", str(scene.office_secret))  # fmt: skip
    step.lines += [f"$ {opened.shown}", f"$ {done.shown}", *("  " + x for x in
                   done.stdout.strip().splitlines())]  # fmt: skip

    def carried_out() -> dict[str, bool]:
        now = {g: commands_done(f.http_port, "register_card") for g, f in scene.gates.items()}
        return {g: (v or 0) > (registered[g] or 0) for g, v in now.items()}

    on_gates = scene.wait(lambda: all(carried_out().values()), GATE_BOUND_S)
    dropped = on_gates and scene.wait(lambda: all(
        (v or 0) < (before[g] or 0) for g, v in _templates(scene).items()), 30)  # fmt: skip
    step.lines.append(f"face templates {before} → {_templates(scene)}")
    step.facts.update(request_id=request_id, card_registered=carried_out())
    if not on_gates:
        late = sorted(g for g, ok in carried_out().items() if not ok)
        step.lines.append(f"register_card not carried out within {GATE_BOUND_S:.0f} s by: "
                          f"{', '.join(late)} (commands_total{{type=register_card}})")  # fmt: skip
    subject = subject_of(scene, "R-102")
    cards_before = subject_events(scene.store, REAL_SITE, "key_card", subject)
    card_ok = False
    if on_gates:
        with scene.gates["garage"].credentials.open("a") as reader:
            reader.write(f"card {KEYCARD_NUMBER}\n")
        card_ok = scene.wait(lambda: subject_events(
            scene.store, REAL_SITE, "key_card", subject) > cards_before, GATE_BOUND_S)  # fmt: skip
    step.ok = dropped and card_ok
    seen = "opened (key_card event stored)" if card_ok else f"NOT seen in {GATE_BOUND_S:.0f} s"
    step.lines.append(f"card {KEYCARD_NUMBER} read at the garage gate: "
                      f"{seen if on_gates else 'not shown (card not registered)'}")  # fmt: skip
    step.facts.update(templates_dropped=dropped, card_opened=card_ok)
    return step
