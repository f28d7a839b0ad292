"""Recognition logic with test doubles: one approach → one decision, bands, 1:N, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.decision import Subject
from edge_agent.vision.calibrate import pair_scores, suggest
from edge_agent.vision.match import Bands, TemplateIndex
from edge_agent.vision.recognizer import GalleryView, RecognitionPolicy, Recognizer
from edge_agent.vision.track import IouTracker, iou
from edge_agent.wire import EventKind, ScoreBand
from tests.edge.fakes import FixedEmbedder, ScriptedDetector, face_at

pytestmark = pytest.mark.unit

FRAME = np.zeros((480, 640, 3), dtype=np.uint8)
ALICE = np.array([1, 0, 0, 0], dtype=np.float32)
STRANGER = np.array([0, 1, 0, 0], dtype=np.float32)


def gallery() -> GalleryView:
    index = TemplateIndex(np.stack([ALICE]), np.array([0]))
    return GalleryView(index, (Subject("ps1_" + "a" * 32, "C-1"),))


def recognizer(script, vectors, **policy) -> tuple[Recognizer, list[float]]:  # type: ignore[no-untyped-def]
    clock = [0.0]
    r = Recognizer(
        ScriptedDetector(script), FixedEmbedder(vectors), RecognitionPolicy(**policy),
        IouTracker(min_iou=0.3, max_missed=2), clock=lambda: clock[0],
    )
    r.set_gallery(gallery())
    return r, clock


def run(r: Recognizer, clock: list[float], frames: int):  # type: ignore[no-untyped-def]
    out = []
    for _ in range(frames):
        out += [o for o, _ in r.process(FRAME).outcomes]
        clock[0] += 0.05
    return out


def test_one_approach_yields_one_decision_and_no_embedding_after_it() -> None:
    # Alice walks towards the camera for 30 frames: 30 detections, one event.
    script = [[face_at(100 + i, 100 + i, 120 + i)] for i in range(30)]
    r, clock = recognizer(script, {1: ALICE})
    outcomes = run(r, clock, 30)
    assert [o.kind for o in outcomes] == [EventKind.FACE_MATCH]
    assert outcomes[0].subject == "ps1_" + "a" * 32
    assert r.embedder.calls == 1  # type: ignore[attr-defined]


def test_unknown_face_is_decided_after_n_frames_once_without_subject() -> None:
    script = [[face_at(100, 100)] for _ in range(20)]
    r, clock = recognizer(script, {1: STRANGER}, unknown_after_frames=3)
    outcomes = run(r, clock, 20)
    assert len(outcomes) == 1
    assert outcomes[0].kind is EventKind.UNKNOWN_FACE and outcomes[0].subject is None
    assert outcomes[0].score_band is ScoreBand.LOW
    assert r.embedder.calls == 3  # type: ignore[attr-defined]


def test_two_people_in_one_frame_two_decisions() -> None:
    script = [[face_at(100, 100), face_at(400, 100)] for _ in range(5)]
    r, clock = recognizer(script, {1: ALICE, 4: STRANGER}, unknown_after_frames=2)
    kinds = sorted(o.kind.value for o in run(r, clock, 5))
    assert kinds == ["face_match", "unknown_face"]


def test_a_new_approach_after_leaving_is_a_new_decision_but_a_blip_is_not() -> None:
    gap = [[]] * 1  # lost for one frame: same track
    leave = [[]] * 5  # gone long enough: track ends
    script = (
        [[face_at(100, 100)]] * 3 + gap + [[face_at(100, 100)]] * 3
        + leave + [[face_at(100, 100)]] * 3
    )
    r, clock = recognizer(script, {1: ALICE}, cooldown_s=0.0)
    assert len(run(r, clock, len(script))) == 2
    # With a cooldown the re-acquired resident is not decided twice.
    r, clock = recognizer(script, {1: ALICE}, cooldown_s=60.0)
    assert len(run(r, clock, len(script))) == 1


def test_small_faces_are_tracked_not_recognised() -> None:
    script = [[face_at(100, 100, size=20)]] * 5
    r, clock = recognizer(script, {1: ALICE}, min_face_px=40)
    assert run(r, clock, 5) == []
    assert r.embedder.calls == 0  # type: ignore[attr-defined]


def test_score_bands_and_top1_search() -> None:
    bands = Bands(threshold=0.5, high=0.65)
    assert [bands.band(s) for s in (0.1, 0.5, 0.64, 0.9)] == [
        ScoreBand.LOW, ScoreBand.MEDIUM, ScoreBand.MEDIUM, ScoreBand.HIGH
    ]
    rng = np.random.default_rng(1)
    t = rng.standard_normal((1000, 192)).astype(np.float32)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    owners = np.arange(1000) // 2
    index = TemplateIndex(t, owners)
    hits = index.search(t[[10, 501]], threshold=0.5)
    assert [h.owner for h in hits] == [5, 250]
    miss = index.search(-t[[3]], threshold=0.5)[0]
    assert miss.owner is None
    assert TemplateIndex.empty(192).search(t[:1], 0.5)[0].owner is None


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_calibration_suggests_a_threshold_between_the_distributions() -> None:
    rng = np.random.default_rng(0)
    people = rng.standard_normal((6, 64))
    rows, labels = [], []
    for i, p in enumerate(people):
        for _ in range(4):
            v = p + 0.35 * rng.standard_normal(64)
            rows.append(v / np.linalg.norm(v))
            labels.append(f"p{i}")
    genuine, impostor = pair_scores(np.asarray(rows, dtype=np.float32), labels)
    assert len(genuine) == 6 * 6 and len(impostor) == 24 * 23 // 2 - 36
    result = suggest(genuine, impostor, target_far=0.001)
    assert result.impostor.max < result.threshold
    assert result.false_accept_rate == 0.0
    assert result.genuine.p50 > result.threshold


def test_large_galleries_scan_in_int8_and_rescore_to_the_exact_answer() -> None:
    from edge_agent.vision.int8_scan import Int8Scan

    rng = np.random.default_rng(7)
    t = rng.standard_normal((3000, 192)).astype(np.float32)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    q = t[[11, 2900, 5]] + 0.04 * rng.standard_normal((3, 192)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[2] = -t[5]  # nobody
    fast = TemplateIndex(t, np.arange(3000) // 3, quantize_from=1000)
    exact = TemplateIndex(t, np.arange(3000) // 3, quantize_from=10**9)
    got, want = fast.search(q, 0.5), exact.search(q, 0.5)
    assert [m.owner for m in got] == [m.owner for m in want] == [11 // 3, 2900 // 3, None]
    assert [round(m.score, 4) for m in got[:2]] == [round(m.score, 4) for m in want[:2]]
    approx = Int8Scan(t).scores(t[:2])
    assert approx.shape == (2, 3000) and list(np.argmax(approx, axis=1)) == [0, 1]


def test_detector_shrink_gives_the_asked_size_and_stays_close_to_an_area_resize() -> None:
    import cv2

    from edge_agent.vision.blazeface import shrink

    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    for (w, h), (tw, th) in [
        ((640, 480), (256, 192)), ((1280, 720), (256, 144)), ((641, 481), (256, 192)),
        ((100, 80), (256, 205)), ((256, 192), (256, 192)),
    ]:
        image = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)  # smooth content
        got = shrink(image, tw, th)
        assert got.shape == (th, tw, 3) and got.dtype == np.uint8
        want = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA if tw < w else
                          cv2.INTER_LINEAR)
        # Busy synthetic content: a few grey levels on average (real frames: under 0.5).
        assert float(np.abs(got.astype(np.float32) - want).mean()) < 3.0, (w, h)
