"""QC warnings that mean what they say (issue 27): the AV offset is reported only when it is
confident and the dub speaks, messages quote the JSON's numbers, lip detail is the lips' own,
and the QC page gathers every sidecar of its folder, worst first."""

from __future__ import annotations

import json
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from lipdub.eval.metrics import lips_box
from lipdub.eval.qc import (
    DubQC,
    _measure_sync,
    default_syncnet,
    opening_warning,
    qc_path,
    rendered_openings,
)
from lipdub.eval.qc_checks import (
    OFFSET_MIN_SPEECH,
    LipDetail,
    measure_warnings,
    offset_peak,
    offset_warning,
)
from lipdub.eval.report import write_report
from tests.exemplar.faces import face_landmarks


def _qc(**values: object) -> DubQC:
    qc = DubQC(shot="sh010", dub="de", output="x.mov", frames=10, fps="25/1", generator="g")
    for k, v in values.items():
        setattr(qc, k, v)
    return qc


def test_a_silent_dub_raises_no_offset_warning() -> None:
    """All-silent audio gives identical audio embeddings at every offset: a flat curve whose
    argmin is its first entry, which read as "15 frames off" before."""
    syncnet = default_syncnet()
    if syncnet is None:
        pytest.skip("no default_syncnet in weights/manifest.toml")
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (20, 128, 128, 3)).astype(np.uint8)
    qc = _qc()
    fps = Fraction(25)
    _measure_sync(qc, syncnet, crops, np.zeros(16_000, np.float32), np.arange(20), fps, 0)
    assert qc.syncnet_offset is not None and qc.syncnet_offset_peak == 0.0
    assert not any("lip sync" in w for w in qc.warnings), qc.warnings


def test_only_a_confident_offset_on_speech_is_reported() -> None:
    flat_ish = 1.0 + 0.01 * np.sin(np.arange(31))  # Minimum barely below its neighbours.
    clear = np.full(31, 1.0)
    clear[15 + 6] = 0.5  # Offset +6, nothing else close.
    assert offset_peak(np.ones(31)) == 0.0
    assert offset_peak(clear) == 1.0
    assert offset_peak(flat_ish) < 0.5
    many = OFFSET_MIN_SPEECH
    deep = 0.14  # LSE-C of the aoc clip's own speech, shipped SyncNet.
    assert offset_warning(6, round(offset_peak(flat_ish), 3), deep, many) is None
    assert offset_warning(6, 1.0, deep, 0) is None  # A silent dub.
    assert offset_warning(2, 1.0, deep, many) is None  # Within the tolerance.
    # A minimum that stands out on a shallow curve (exemplar renders: LSE-C ≤ 0.068).
    assert offset_warning(15, 0.669, 0.0212, many) is None
    message = offset_warning(6, 1.0, deep, many)
    assert message is not None and "av_offset 6" in message and "offset_peak 1.0" in message
    assert "lse_c 0.14" in message


def test_every_number_in_a_message_is_the_jsons() -> None:
    qc = _qc(detail_ratio=0.213, flicker_ratio=2.9, seam_ratio=1.02)
    messages = measure_warnings(qc.detail_ratio, qc.flicker_ratio, qc.seam_ratio)
    assert len(messages) == 2  # Soft lips and flicker; the seam is within its threshold.
    assert "detail_ratio 0.213" in messages[0] and "flicker_ratio 2.9" in messages[1]
    # The opening warning quotes the rendered frames' means, which the JSON now holds: before,
    # it quoted them (0.148) while the JSON held the mean over every silent frame (0.0161).
    opening = np.array([0.02, 0.02, 0.3, 0.3, 0.1, 0.1])
    loud = np.array([-20.0, -20.0, -60.0, -60.0, -60.0, -60.0])
    own = np.array([False, False, False, False, True, True])
    quiet, speech = rendered_openings(opening, loud, own)
    message = opening_warning(opening, loud, own)
    assert message is not None and (quiet, speech) == (0.3, 0.02)
    assert f"rendered_silent_opening {quiet} IOD" in message
    assert f"rendered_loud_opening {speech};" in message


def test_a_soft_mouth_is_flagged_by_the_lips_own_detail() -> None:
    lm = face_landmarks(centre=(100, 90), scale=1.5, opening=0.2)
    rng = np.random.default_rng(3)
    noise = rng.integers(60, 200, (220, 200, 3)).astype(np.uint8)
    src = np.asarray(cv2.GaussianBlur(noise, (0, 0), 0.7), np.uint8)  # Skin-like fine texture.
    soft = src.copy()
    x0, y0, x1, y1 = lips_box(lm, src.shape)  # Blur round the lips only.
    soft[y0:y1, x0:x1] = cv2.GaussianBlur(src[y0:y1, x0:x1], (0, 0), 3)
    same, blurred = LipDetail(np.ones(3, bool)), LipDetail(np.ones(3, bool))
    for i in range(3):
        same.add(i, src, src, lm)
        blurred.add(i, src, soft, lm)
    assert same.ratio() == 1.0
    ratio = blurred.ratio()
    assert ratio is not None and ratio < 0.3
    assert measure_warnings(ratio, None, None)


def _sidecar(folder: Path, name: str, **values: object) -> Path:
    out = folder / name
    out.write_bytes(b"")
    side = qc_path(out)
    side.parent.mkdir(parents=True, exist_ok=True)
    qc = _qc(output=str(out), shot=name.split("_")[0], **values)
    qc.thumbnails = {"before": "b.png", "after": "a.png"}
    side.write_text(json.dumps(asdict(qc)), encoding="utf-8")
    return out


def test_the_page_gathers_the_folder_and_ranks_worst_first(tmp_path: Path) -> None:
    fine = _sidecar(tmp_path, "sh020_de.mov", detail_ratio=0.85, flicker_ratio=1.0)
    _sidecar(tmp_path, "sh010_de.mov", detail_ratio=0.8, flicker_ratio=2.9)
    _sidecar(tmp_path, "sh030_de.mov", detail_ratio=0.21, flicker_ratio=1.0)
    # A one-clip render of sh020 writes the page: the other two stay on it.
    page = write_report(tmp_path, [fine], "t")
    assert page is not None
    records = json.loads((tmp_path / "lipdub-qc.json").read_text())
    assert sorted(r["shot"] for r in records) == ["sh010", "sh020", "sh030"]
    text = page.read_text()
    table = text[: text.index("<section")]
    # detail 0.21 is 0.6 / 0.21 = 2.86 past its threshold; flicker 2.9 is 2.9 / 1.5 = 1.93.
    assert table.index("sh030") < table.index("sh010") < table.index("sh020")


def test_a_dub_with_a_track_left_undubbed_ranks_first(tmp_path: Path) -> None:
    """A dubbed actor's track left as the source (a bank too thin, no fallback chosen) says
    the original line: the page puts it first, however good its other measures are."""
    _sidecar(tmp_path, "sh010_de.mov", detail_ratio=0.21, flicker_ratio=2.9)
    thin = {"track": 1, "actor": "anna", "reason": "12 usable frames (< 50)"}
    _sidecar(tmp_path, "sh020_de.mov", detail_ratio=0.85, not_dubbed=[thin])
    page = write_report(tmp_path, [], "t")
    assert page is not None
    text = page.read_text()
    table = text[: text.index("<section")]
    assert table.index("sh020") < table.index("sh010")
    assert "<td>not_dubbed</td><td>1</td>" in table
    assert "track 1 (anna): 12 usable frames (&lt; 50)" in text


def test_a_page_that_fails_half_way_leaves_the_last_whole_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page is moved into place only when complete: a supervisor never opens half a page
    (here the disk fills half-way through the write)."""
    fine = _sidecar(tmp_path, "sh020_de.mov", detail_ratio=0.85, flicker_ratio=1.0)
    page = write_report(tmp_path, [fine], "t")
    assert page is not None
    before = page.read_text()
    write_text = Path.write_text

    def half(self: Path, text: str, *args: object, **kwargs: object) -> int:
        if self.suffix == ".html":
            write_text(self, text[: len(text) // 2], encoding="utf-8")
            raise OSError("disk full")
        return write_text(self, text, encoding="utf-8")

    _sidecar(tmp_path, "sh010_de.mov", detail_ratio=0.3, flicker_ratio=1.0)
    monkeypatch.setattr(Path, "write_text", half)
    with pytest.raises(OSError, match="disk full"):
        write_report(tmp_path, [fine], "t")
    monkeypatch.undo()
    assert page.read_text() == before
    assert not [p for p in tmp_path.iterdir() if "lipdub-partial" in p.name]


def test_qc_counts_the_pauses_the_default_driver_closes_on():
    """QC's pause length mirrors the driver's (QC may not import the generator's layer)."""
    from lipdub.eval.qc import PAUSE_S
    from lipdub.exemplar.target import MIN_PAUSE_S

    assert PAUSE_S == MIN_PAUSE_S
