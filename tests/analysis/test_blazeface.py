"""The default face detector: BlazeFace's bundled model is verified before it loads, finds a face
where dlib's HOG does (and a face filling the whole picture, which its first pass alone misses),
finds none on a wall, gives the same boxes on any thread count; a face followed on its previous
crop gets the points a fresh two-pass fit gives."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data as skimage_data

from lipdub.analysis.blazeface import (
    MODEL_KIND,
    MODEL_NAME,
    PASS_FILLS,
    BlazeFaceDetector,
    load_blazeface,
    merge_overlapping,
)
from lipdub.analysis.bundled import bundled_model
from lipdub.analysis.detection import detect_in_frame, detect_in_region, smallest_face_px
from lipdub.analysis.landmarking import FacesWithLandmarker
from lipdub.analysis.mesh import load_mesh_landmarker
from lipdub.analysis.settings import AnalysisSettings
from lipdub.analysis.shot_analysis import default_stages
from lipdub.analysis.tracking import iou
from lipdub.errors import WeightsError
from lipdub.manifest import load_manifest
from lipdub.testing.contract import ASTRONAUT_FACE


def test_model_bytes_that_differ_from_the_checked_digest_are_refused():
    entry = load_manifest().entries[MODEL_NAME]
    data = entry.file.read_bytes()
    config = {"input": [192, 192, 3], "anchor_grid": 48, "outputs": {}}
    with pytest.raises(WeightsError, match="hash to"):
        BlazeFaceDetector(data[:-1] + bytes([data[-1] ^ 1]), entry.sha256, config)


def test_it_is_the_default_and_finds_the_face_dlib_finds():
    stages = default_stages(AnalysisSettings(), ["faces"])
    assert stages["faces"].name == "blazeface"
    image = skimage_data.astronaut()
    found = detect_in_frame(image, stages["faces"], AnalysisSettings())
    assert len(found) == 1
    box, score = found[0]
    assert score > 0.5
    assert iou(box, ASTRONAUT_FACE) > 0.5  # ASTRONAUT_FACE: dlib HOG's box of that face.


def test_a_face_filling_the_picture_is_found_by_the_second_pass():
    image = skimage_data.astronaut()
    x0, y0, x1, y1 = (int(v) for v in ASTRONAUT_FACE)
    pad = (x1 - x0) // 8
    tight = np.ascontiguousarray(image[y0 - pad : y1 + pad, x0 - pad : x1 + pad])
    tight = cv2.resize(tight, (224, 224), interpolation=cv2.INTER_LINEAR)
    det = load_blazeface()
    first_only = det._pass(tight, PASS_FILLS[0])
    found = det.detect(tight)
    assert len(found) == 1
    box = found[0][0]
    assert box[2] - box[0] > 0.5 * 224  # It is the face that fills the picture.
    # The reason for the second pass: the first alone scores this face lower (or misses it).
    assert len(first_only[1]) == 0 or first_only[1].max() < found[0][1]


def test_a_wall_and_noise_hold_no_face():
    det = load_blazeface()
    assert det.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert det.detect(noise) == []


def test_boxes_do_not_depend_on_the_thread_count():
    image = skimage_data.astronaut()
    data, sha, config = bundled_model(MODEL_NAME, MODEL_KIND, "face detector model")
    one = BlazeFaceDetector(data, sha, config, threads=1).detect(image)
    two = BlazeFaceDetector(data, sha, config, threads=2).detect(image)
    assert len(one) == len(two) == 1
    assert np.array_equal(one[0][0], two[0][0]) and one[0][1] == two[0][1]


def test_a_region_search_returns_frame_pixels():
    image = skimage_data.astronaut()
    det = load_blazeface()
    whole = det.detect(image)[0][0]
    region = detect_in_region(image, whole, det)
    assert len(region) == 1
    # The same face, found on a crop around it: the boxes agree to a few percent of its side.
    assert np.abs(region[0][0] - whole).max() < 0.08 * (whole[2] - whole[0])


def test_the_smallest_face_follows_the_frame_size_not_the_settings():
    det = load_blazeface()
    joined = FacesWithLandmarker(det, load_mesh_landmarker())
    s = AnalysisSettings()
    assert smallest_face_px(1920, 1080, joined, s) == pytest.approx(
        2 * smallest_face_px(960, 540, joined, s)
    )


def test_overlapping_boxes_merge_weighted_by_score_and_apart_ones_stay():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float64)
    scores = np.array([0.9, 0.3, 0.8])
    merged = merge_overlapping(boxes, scores)
    assert [round(s, 2) for _, s in merged] == [0.9, 0.8]
    np.testing.assert_allclose(merged[0][0], [0.25, 0, 10.25, 10])  # (0.9*0 + 0.3*1) / 1.2.
    np.testing.assert_allclose(merged[1][0], boxes[2])
    assert merge_overlapping(np.zeros((0, 4)), np.zeros(0)) == []


def test_a_followed_face_gets_the_points_of_a_fresh_fit():
    # The mesh's one-pass fit on the crop the previous frame's points framed (how MediaPipe
    # tracks a face) against its two-pass fit from the box: on a still face the same points to
    # within 1% of the face's width (the crops differ by the coarse pass's error).
    image = skimage_data.astronaut()
    lm = load_mesh_landmarker(follow=True)
    fresh = lm.landmarks(image, [ASTRONAUT_FACE])
    rois = list(lm.rois)
    followed = lm.landmarks(image, [ASTRONAUT_FACE], rois=rois)
    width = float(np.ptp(fresh[0][:, 0]))
    assert np.abs(followed - fresh).max() < 0.01 * width
    # A crop that no longer frames the face (it moved away) is refitted from the box.
    centre, side, angle = rois[0]
    lost = [(np.asarray(centre) + 200.0, side, angle)]
    refit = lm.landmarks(image, [ASTRONAUT_FACE], rois=lost)
    assert np.abs(refit - fresh).max() < 0.01 * width


def test_the_analysis_hands_followed_faces_their_crops_only_when_asked():
    image = skimage_data.astronaut()
    default = FacesWithLandmarker(load_blazeface(), load_mesh_landmarker())
    assert not default.follows  # Off by default: two passes on every face.
    following = FacesWithLandmarker(load_blazeface(), load_mesh_landmarker(follow=True))
    assert following.follows and following.name.endswith("+follow")  # Its own cache key.
    points = following.landmarks(image, [ASTRONAUT_FACE])
    assert following.rois is not None and len(following.rois) == 1
    again = following.landmarks(image, [ASTRONAUT_FACE], rois=following.rois)
    assert np.abs(again - points).max() < 0.01 * float(np.ptp(points[0][:, 0]))
