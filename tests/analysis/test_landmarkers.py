"""The landmarker stage: the bundled mesh model is verified before it loads, runs the same on any
thread count, reads as dlib's 68 points through a table on the mesh's own contours; the default
analysis never touches dlib's 68-point model, and choosing it warns about its terms."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from skimage import data as skimage_data

from lipdub.analysis import faces as dlib_faces
from lipdub.analysis.masks import mouth_opening
from lipdub.analysis.mesh import (
    INPUT_PX,
    MODEL_NAME,
    MeshLandmarker,
    crop_matrix,
    load_mesh_landmarker,
    model_crop,
)
from lipdub.analysis.mesh68 import (
    INNER_LIP_CONTOUR,
    INNER_LIPS,
    LIP_REFINEMENT,
    MESH_TO_68,
    OUTER_LIPS,
)
from lipdub.analysis.mesh_graph import SplitGraph
from lipdub.analysis.mesh_ops import (
    landmarks_to_transform_matrix,
    transform_landmarks,
    transform_tensor_bilinear,
)
from lipdub.analysis.settings import AnalysisSettings
from lipdub.analysis.shot_analysis import analyze_shot, default_stages
from lipdub.config.settings import Settings
from lipdub.errors import WeightsError
from lipdub.manifest import load_manifest
from lipdub.plugin_manager import PluginManager
from lipdub.testing.contract import ASTRONAUT_FACE
from tests.conftest import shared_data

#: The outer-lip contour of the mesh (MediaPipe's lip outline), corner to corner and back.
OUTER_CONTOUR = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291,
                 375, 321, 405, 314, 17, 84, 181, 91, 146)  # fmt: skip


def test_model_bytes_that_differ_from_the_checked_digest_are_refused():
    entry = load_manifest().entries[MODEL_NAME]
    data = entry.file.read_bytes()
    outputs = {"landmarks": "output_mesh_identity", "face_flag": "conv_faceflag"}
    with pytest.raises(WeightsError, match="hash to"):
        MeshLandmarker(data[:-1] + bytes([data[-1] ^ 1]), entry.sha256, outputs)


def test_a_bilinear_crop_by_the_identity_is_the_feature_map_itself():
    features = np.random.default_rng(0).normal(size=(1, 6, 5, 3)).astype(np.float32)
    out = transform_tensor_bilinear(features, np.eye(4, dtype=np.float32)[None], 5, 6)
    np.testing.assert_allclose(out, features, atol=1e-6)  # Pixel centres map onto themselves.


def test_the_crop_matrix_frames_the_subset_and_its_landmarks_map_back():
    # A level subset spanning x 10..30, y 20..30: a 16x16 crop at scale 1 spans the same box.
    pts = np.array([[10, 20, 0], [30, 20, 0], [30, 30, 0], [10, 30, 0]], np.float32)[None]
    m = landmarks_to_transform_matrix(pts, 0, 1, [[0, 1], [2, 3]], 1.0, 1.0, 16, 16)
    corners = transform_landmarks(np.array([[[0, 0], [16, 16]]], np.float32), m)
    np.testing.assert_allclose(corners[0], [[10, 20], [30, 30]], atol=1e-4)


def test_a_large_face_s_crop_frames_what_a_plain_warp_frames_without_its_aliasing():
    """A 1080p face crop shrunk 3x: on a smooth picture the area-averaged crop is the bilinear
    warp's (the geometry is the same, within rounding of a gradient); on stripes one pixel
    wide, which a 3x bilinear sample reads as pure black or white, it is one flat grey."""
    h, w = 1080, 1920
    centre, side, angle = np.array([960.0, 540.0]), 3.0 * INPUT_PX, 0.2
    ys, xs = np.mgrid[0:h, 0:w]
    smooth = np.dstack([xs * 255 // w, ys * 255 // h, (xs + ys) * 255 // (w + h)]).astype(np.uint8)
    plain = cv2.warpAffine(smooth, crop_matrix(centre, side, angle), (INPUT_PX, INPUT_PX))
    got = model_crop(smooth, centre, side, angle)
    # A gradient of < 0.25 levels a pixel, averaged over 3x3 before sampling: within 1 level
    # inside (the border's pixels see black beyond the frame's edge the same way in both).
    inner = (slice(4, -4), slice(4, -4))
    assert np.abs(got[inner].astype(int) - plain[inner].astype(int)).max() <= 1
    stripes = np.repeat((xs % 2 * 255).astype(np.uint8)[..., None], 3, axis=2)
    aliased = cv2.warpAffine(stripes, crop_matrix(centre, side, angle), (INPUT_PX, INPUT_PX))
    shrunk = model_crop(stripes, centre, side, angle)
    # Bilinear sampling keeps lines of pure black and white; block means mix them to grey.
    assert aliased[inner].std() > 60 and aliased[inner].min() < 20 and aliased[inner].max() > 235
    assert shrunk[inner].std() < 5 and abs(float(shrunk[inner].mean()) - 127.5) < 2


def test_a_small_face_s_crop_is_the_plain_warp():
    image = np.random.default_rng(3).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    centre, side = np.array([200.0, 150.0]), 1.2 * INPUT_PX
    plain = cv2.warpAffine(image, crop_matrix(centre, side, 0.1), (INPUT_PX, INPUT_PX))
    assert np.array_equal(model_crop(image, centre, side, 0.1), plain)


def test_the_split_model_runs_the_plain_mesh_as_litert_alone_does():
    entry = load_manifest().entries["mediapipe-face-mesh-v1"]
    data = entry.file.read_bytes()
    x = np.random.default_rng(1).random((1, 192, 192, 3), dtype=np.float32)
    direct = Interpreter(model_content=data)
    direct.allocate_tensors()
    direct.set_tensor(direct.get_input_details()[0]["index"], x)
    direct.invoke()
    want = {d["name"]: direct.get_tensor(d["index"]) for d in direct.get_output_details()}
    got = SplitGraph(data).run(x)
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_the_refined_lips_stay_on_the_coarse_mesh_s_lips():
    # The attention heads move the 80 lip points by a pixel or two of the 192 px crop, not more:
    # a wrong crop matrix or a mis-ordered refinement table would throw them off the mouth.
    lm = load_mesh_landmarker()
    image = skimage_data.astronaut()
    refined = lm.mesh(image, [ASTRONAUT_FACE])[0][0, LIP_REFINEMENT, :2]
    coarse = load_mesh_landmarker(model="mediapipe-face-mesh-v1").mesh(image, [ASTRONAUT_FACE])
    side = ASTRONAUT_FACE[2] - ASTRONAUT_FACE[0]
    drift = np.linalg.norm(refined - coarse[0][0, LIP_REFINEMENT, :2], axis=1)
    assert np.median(drift) < 0.03 * side, np.median(drift)


def test_the_points_do_not_depend_on_the_thread_count():
    image = skimage_data.astronaut()
    one = load_mesh_landmarker(1).landmarks(image, [ASTRONAUT_FACE])
    two = load_mesh_landmarker(2).landmarks(image, [ASTRONAUT_FACE])
    assert np.array_equal(one, two)  # The analysis cache's promise: same input, same points.


def test_the_presence_score_is_high_on_a_face_and_low_on_a_wall():
    lm = load_mesh_landmarker()
    lm.landmarks(skimage_data.astronaut(), [ASTRONAUT_FACE])
    face = float(lm.scores[0])
    lm.landmarks(np.full((512, 512, 3), 128, np.uint8), [ASTRONAUT_FACE])
    assert face > AnalysisSettings().redetect_below > float(lm.scores[0])


def test_the_table_reads_the_lips_off_the_mesh_s_own_lip_contours():
    assert len(MESH_TO_68) == 68 and len(set(MESH_TO_68.tolist())) == 68
    assert set(INNER_LIPS) <= set(INNER_LIP_CONTOUR)  # 60..67: the inner-lip contour only.
    assert set(OUTER_LIPS) <= set(OUTER_CONTOUR)
    assert MESH_TO_68[60:68].tolist() == list(INNER_LIPS)


def test_the_default_analysis_never_loads_dlib_s_68_point_model(monkeypatch):
    loaded: list[str] = []
    real = dlib_faces._load

    def spy(kind: str, name: str):
        loaded.append(name)
        return real(kind, name)

    monkeypatch.setattr(dlib_faces, "_load", spy)
    stages = default_stages(AnalysisSettings())
    image = skimage_data.astronaut()
    boxes = [box for box, _ in stages["faces"].detect(image)]
    points = stages["landmarker"].landmarks(image, boxes)
    stages["faces"].descriptors(image, points)
    assert dlib_faces.LANDMARKS_68 not in loaded
    assert dlib_faces.FACE_DESCRIPTOR in loaded  # The spy sees dlib's loads.


def test_choosing_dlib68_warns_about_its_terms_when_it_loads(caplog):
    dlib_faces._load.cache_clear()  # As in a fresh process.
    with caplog.at_level(logging.WARNING, logger="lipdub.analysis.faces"):
        points = dlib_faces.Dlib68Landmarker().landmarks(skimage_data.astronaut(), [ASTRONAUT_FACE])
    assert points.shape == (1, 68, 2)
    assert any("300-W" in r.getMessage() and "commercial" in r.getMessage() for r in caplog.records)


def test_a_render_builds_the_default_landmarker_with_its_settings():
    # The render's shared settings (device, weights, model...) reach every choice that declares
    # an option of that name: the landmarker's options must not collide with them.
    lm = PluginManager(autoload=False).build("landmarker", Settings(model="lite"))
    assert isinstance(lm, MeshLandmarker) and lm.name == load_mesh_landmarker().name


def test_the_same_footage_gives_the_same_landmarks_and_closed_lips_read_closed():
    # Real footage (skips without ../shared/data): two analyses of one clip with the default
    # landmarker agree to the bit (the analysis cache's promise), and on the frames of
    # bench/mouth_labels.tsv labelled closed by eye the inner lips meet: median gap under
    # 0.01 IOD (bench/results.md: 0.003 on all 49 closed mouths of the test split; dlib 0.020).
    data = shared_data()
    clip = "clips/SadTalker__examples_ref_video_WDA_AlexandriaOcasioCortez_000.mp4"
    closed = [61, 82, 95, 109, 115, 181]  # Its frames labelled closed.
    runs = [analyze_shot(data / clip, 0, 190, conform=True) for _ in range(2)]
    a, b = (max(r.tracks, key=len) for r in runs)
    assert np.array_equal(a.raw_landmarks, b.raw_landmarks)
    assert a.raw_landmarks is not None
    gaps = [mouth_opening(a.raw_landmarks[f - int(a.frames[0])]) for f in closed]
    assert np.median(gaps) < 0.01, gaps
