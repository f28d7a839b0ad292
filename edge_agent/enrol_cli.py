"""``facegate edge enroll`` and ``calibrate``: residents into the gallery, and the match
threshold from photos."""

from __future__ import annotations

import time
from pathlib import Path

import click

from edge_agent.cli_options import checked_config, config_option, non_empty


@click.command()
@config_option
@click.option(
    "--resident-id", "resident", required=True, callback=non_empty,
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
    "--card", "cards", multiple=True, callback=non_empty,
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
    config = checked_config(config_path)
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


@click.command()
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

    config = checked_config(config_path)
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
