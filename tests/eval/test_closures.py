"""The p/b/m closure check shared by QC and the viseme bench."""

from __future__ import annotations

import numpy as np

from lipdub.analysis.mouth_class import CLOSED_MARGIN, closed_level
from lipdub.eval.closures import check_closures, closure_summary, closure_warning
from lipdub.eval.qc import DubQC, qc_path
from lipdub.eval.report import write_report


def test_a_bilabial_counts_as_closed_anywhere_in_its_window_and_chance_is_the_same_test() -> None:
    gaps = np.full(20, 0.2)
    gaps[[4, 11]] = 0.0  # Closed two frames before the p at 6, and one after the b at 10.
    gaps[15] = np.nan  # Not measured.
    level = 0.03
    check = check_closures(gaps, level, [6, 10, 17, 15], speech=np.ones(20, bool))
    assert check.frames == (6, 10, 17, 15)
    assert check.closed == (True, True, False, False)
    assert check.share == 0.5 and check.missed == (17, 15)
    # Frames within [−1, +2] of frames 4 or 11 pass: 3..6 and 10..13 → 8 of 20.
    assert check.chance == 8 / 20


def test_a_window_with_no_measured_frame_is_left_out_not_failed() -> None:
    gaps = np.full(10, np.nan)
    gaps[0] = 0.0
    check = check_closures(gaps, 0.03, [1, 7])
    assert check.frames == (1,) and check.unmeasured == 1 and check.share == 1.0


def test_the_closed_level_is_the_sources_tenth_percentile_plus_a_margin() -> None:
    gaps = np.array([0.0] * 10 + [0.3] * 90 + [np.nan] * 5)
    assert closed_level(gaps) == np.quantile(gaps[:100], 0.1) + CLOSED_MARGIN
    assert closed_level(np.array([np.nan])) is None


def test_qc_warns_below_the_threshold_names_the_frames_and_the_front_end() -> None:
    gaps = np.full(30, 0.2)
    gaps[[4, 5]] = 0.0
    check = check_closures(gaps, 0.03, [5, 12, 20])
    visemes = {"method": "recognition", "recognizer": "hama 1.7.0", "bilabials": 3}
    summary = closure_summary(check, visemes, ["x_pbm_000012.png"], bank_closed=14)
    assert summary["method"] == "recognition"
    assert (summary["measured"], summary["closed"], summary["share"]) == (3, 1, 0.333)
    warning = closure_warning(summary)
    assert warning is not None and "1 of 3" in warning and "12, 20" in warning
    good = closure_summary(check_closures(gaps, 0.03, [5]), visemes, [], bank_closed=14)
    assert closure_warning(good) is None


def test_qc_says_when_the_bank_had_no_closed_lips_to_show() -> None:
    summary = closure_summary(None, {"method": "script", "bilabials": 4}, [], bank_closed=0)
    warning = closure_warning(summary)
    assert warning is not None and "no frame with closed lips" in warning


def test_the_report_shows_the_share_and_the_frames_left_open(tmp_path) -> None:
    out = tmp_path / "renders" / "s1_de.mov"
    qc = DubQC(shot="s1", dub="de", output=str(out), frames=30, fps="25/1", generator="exemplar")
    qc.thumbnails = {"before": "b.png", "after": "a.png"}
    qc.bilabials = {
        "method": "script",
        "measured": 4,
        "closed": 3,
        "share": 0.75,
        "missed_thumbnails": ["s1_de_pbm_000017.png"],
    }
    (tmp_path / "renders" / ".qc").mkdir(parents=True)
    qc.save(qc_path(out))
    page = write_report(tmp_path / "renders", [out], "QC")
    assert page is not None
    html = page.read_text()
    assert "3 of 4 (75%), phones from the script" in html
    assert "s1_de_pbm_000017.png" in html and "frame 17" in html
