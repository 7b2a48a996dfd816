"""Analysis on the real footage and photos of ../shared/data (skipped when it is absent).

Frames are sampled to keep the suite fast; bench/analysis_quality.py measures every frame.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from lipdub.analysis.align import (
    paste_region,
    similarity_to_template,
    transform_points,
    warp_to_crop,
    warp_to_frame,
)
from lipdub.analysis.detection import detect_in_frame
from lipdub.analysis.faces import DlibFaceDetector
from lipdub.analysis.identity import build_gallery
from lipdub.analysis.masks import UShapePlanner, blend_mask
from lipdub.analysis.overlay import write_contact_sheet, write_overlay
from lipdub.analysis.records import UNKNOWN
from lipdub.analysis.settings import AnalysisSettings
from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.analysis.smoothing import jitter, shake
from lipdub.media.read import open_video
from lipdub.media.write import VideoWriter, codec_for

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
pytestmark = pytest.mark.shared

#: Frames analysed per clip in the detection test (a window from the middle of the clip).
WINDOW = 30
#: Bound on the median frame-to-frame eye-corner displacement of a smoothed track, % of IOD.
#: This includes real head motion: on the test clips it measures 0.15-1.6% smoothed (0.5-2.6%
#: raw), on the train clips up to 4.9% (LivePortrait d11 shakes its head fast). 3% leaves room
#: for talking-head motion while catching a tracker that jumps.
MAX_MEDIAN_DISPLACEMENT = 3.0
#: Bound on the median second difference ("shake") of a smoothed track, % of IOD: the part of
#: the frame-to-frame motion that is not steady movement, i.e. the jitter. 1% of the IOD is
#: 0.56 px in a 256 crop (IOD = 0.22 x 256): a sub-pixel wobble. Measured on the test clips:
#: 0.12-0.74% smoothed, 0.9-3.7% raw (bench/results.md has every clip).
MAX_MEDIAN_SHAKE = 1.0


def data() -> Path:
    if not (DATA / "clips.tsv").is_file():
        pytest.skip(f"real media not available ({DATA.resolve()} is absent)")
    return DATA


def clips(*splits: str) -> list[dict[str, str]]:
    with (data() / "clips.tsv").open() as f:
        return [r for r in csv.DictReader(f, delimiter="\t") if r["split"] in splits]


@dataclass(frozen=True)
class Actor:
    name: str
    footage: tuple[Path, ...] = ()
    references: tuple[Path, ...] = ()


def _window(path: Path, length: int) -> tuple[int, int]:
    with open_video(path, conform=True) as v:
        n = v.info.frame_count
    start = max(0, n // 2 - length // 2)
    return start, min(n, start + length)


def test_faces_are_found_on_98_percent_of_frames_of_every_clip():
    results = {}
    for row in clips("train", "test"):
        path = data() / row["file"]
        start, stop = _window(path, WINDOW)
        a = analyze_shot(path, start, stop, conform=True)
        results[row["file"]] = a
        assert a.coverage >= 0.98, (row["file"], a.coverage, a.warnings)
    assert len(results) == 56


def test_a_short_profile_turn_is_bridged_over_the_whole_clip():
    """LRS2 00009 turns to near-profile for 8 frames; the track must carry across them."""
    a = analyze_shot(data() / "clips" / "deep_avsr__av_demo_00009.mp4")
    assert a.coverage >= 0.98 and len(a.tracks) == 1, a.warnings


def test_smoothed_landmarks_are_steady():
    for row in clips("test"):
        path = data() / row["file"]
        a = analyze_shot(path, *_window(path, 90))
        track = max(a.tracks, key=len)
        disp, shk = np.median(jitter(track.landmarks)), np.median(shake(track.landmarks))
        assert disp < MAX_MEDIAN_DISPLACEMENT, (row["file"], disp)
        assert shk < MAX_MEDIAN_SHAKE, (row["file"], shk)
        assert shk < np.median(shake(track.raw_landmarks)), row["file"]


@pytest.mark.parametrize(
    "photo,count",
    [
        ("3DDFA_V2__examples_inputs_trump_hillary.jpg", 2),
        ("deepface__tests_unit_dataset_couple.jpg", 2),
        ("face_recognition__examples_two_people.jpg", 2),
        ("facenet-pytorch__data_multiface.jpg", 6),
        # Four whole faces; three more are cut by the frame edge (HOG needs the whole face).
        ("deepface__tests_unit_dataset_selfie-many-people.jpg", 4),
        # Two of the three portraits; the third is in profile (frontal detector).
        ("3DDFA_V2__examples_inputs_emma.jpg", 2),
        ("face_recognition__examples_obama.jpg", 1),
    ],
)
def test_the_right_number_of_faces_on_photos(photo, count):
    bgr = cv2.imread(str(data() / "photos" / photo))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    faces = detect_in_frame(rgb, DlibFaceDetector("hog"), AnalysisSettings())
    assert len(faces) == count


def test_one_speaker_in_two_clips_is_one_actor_and_others_are_not():
    c = data() / "clips"
    andrew1 = c / "styletalk__samples_source_video_video_andrew_clip_1.mp4"
    andrew2 = c / "styletalk__samples_source_video_video_andrew_clip_2.mp4"
    aoc1 = c / "SadTalker__examples_ref_video_WDA_AlexandriaOcasioCortez_000.mp4"
    aoc2 = c / "V-Express__test_samples_short_case_AOC_gt.mp4"
    vox = c / "Talking-Face_PC-AVS__misc_Input_00098.mp4"
    mead = c / "spectre__samples_MEAD_W036_level_3_happy_007.mp4"
    s = AnalysisSettings(reference_frames=4, descriptor_every=10)
    actors = {"andrew": Actor("andrew", (andrew1,)), "aoc": Actor("aoc", (aoc1,))}
    expected = {andrew2: "andrew", aoc2: "aoc", vox: UNKNOWN, mead: UNKNOWN}
    for query, name in expected.items():
        a = analyze_shot(query, 0, 40, actors, s)
        track = max(a.tracks, key=len)
        assert track.actor == name, (query.name, track.actor, track.actor_distance)
    gallery, warnings = build_gallery(actors, DlibFaceDetector("hog"), s)
    assert sorted(gallery) == ["andrew", "aoc"] and not warnings


def test_a_two_shot_clip_is_split_at_the_cut_and_tracked_per_shot(tmp_path):
    c = data() / "clips"
    parts = [
        (c / "styletalk__samples_source_video_video_andrew_clip_1.mp4", 40),
        (c / "Talking-Face_PC-AVS__misc_Input_00098.mp4", 35),
    ]
    out = tmp_path / "two_shots.mp4"
    with VideoWriter(out, 256, 256, Fraction(25), codec_for("h264", out)) as w:
        for path, n in parts:
            with open_video(path) as v:
                for frame in v.frames(0, n):
                    w.write(cv2.resize(frame, (256, 256), interpolation=cv2.INTER_AREA))
    a = analyze_shot(out)
    assert len(a.cuts) == 1 and abs(a.cuts[0] - 40) <= 1
    spans = sorted((int(t.frames[0]), int(t.frames[-1])) for t in a.tracks)
    assert len(spans) == 2 and spans[0][1] < a.cuts[0] <= spans[1][0]
    assert a.coverage >= 0.98


def test_paste_back_keeps_pixels_outside_the_mask_on_real_frames():
    path = data() / "clips" / "LatentSync__assets_demo1_video.mp4"
    a = analyze_shot(path, 0, 10)
    track = a.tracks[0]
    planner = UShapePlanner()
    with open_video(path) as v:
        frames = list(v.frames(0, 10))
    for k in (0, 9):
        frame, lm = frames[k], track.landmarks[k]
        for size in (256, 128):
            m = similarity_to_template(lm, size)
            crop = warp_to_crop(frame, m, size)
            box = paste_region(m, size, frame.shape)
            back = warp_to_frame(crop, m, box)
            soft = blend_mask(planner.plan(transform_points(m, lm), size), m, box, 8.0)
            x0, y0, x1, y1 = box
            region = frame[y0:y1, x0:x1].astype(np.float32)
            pasted = frame.copy()
            mixed = region * (1 - soft[..., None]) + back * soft[..., None]
            pasted[y0:y1, x0:x1] = np.round(mixed).astype(np.uint8)
            outside = np.ones(frame.shape[:2], bool)
            outside[y0:y1, x0:x1] = soft == 0
            assert np.abs(pasted[outside].astype(int) - frame[outside]).max() <= 1
            assert soft.any()
            # Inside, a crop's round trip loses only detail finer than the crop's pixels.
            err = np.abs(back.astype(np.float32) - region)[soft > 0.5].mean()
            assert err < (6.0 if size == 256 else 10.0)


def test_debug_overlay_and_contact_sheet(tmp_path):
    path = data() / "clips" / "deep_avsr__av_demo_00019.mp4"
    a = analyze_shot(path, 0, 20)
    video = write_overlay(path, a, tmp_path / "o.mp4", UShapePlanner())
    sheet = write_contact_sheet(path, a, tmp_path / "o.png")
    with open_video(video) as v:
        assert v.info.frame_count == 20
    image = cv2.imread(str(sheet))
    assert image is not None and image.shape[0] > 200
