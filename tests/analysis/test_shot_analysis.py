"""A shot's analysis on media made here: cuts, bad input, records on disk and the cache."""

from __future__ import annotations

import json
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from lipdub.analysis import cache, shot_analysis
from lipdub.analysis.cuts import SceneDetectShots
from lipdub.analysis.records import FaceTrack, ShotAnalysis
from lipdub.analysis.settings import AnalysisSettings
from lipdub.analysis.shot_analysis import analyze_shot, detect_cuts
from lipdub.errors import MediaError
from lipdub.media.write import VideoWriter, codec_for


def scene(kind: int, i: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """Frame ``i`` of a slowly drifting synthetic scene; kinds differ in colour and texture."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    if kind == 0:
        rgb = [(x + i) % 256, (y * 2) % 256, np.full_like(x, 90)]
    else:
        rgb = [np.full_like(x, 200), ((x // 8 + y // 8) % 2) * 120 + i, (y + 3 * i) % 256]
    return np.stack(rgb, -1).astype(np.uint8)


def two_shot_clip(path: Path, first: int = 30, second: int = 30) -> Path:
    """Scene 0 for ``first`` frames, then scene 1: one hard cut at frame ``first``."""
    with VideoWriter(path, 160, 120, Fraction(25), codec_for("h264", path)) as w:
        for i in range(first):
            w.write(scene(0, i))
        for i in range(second):
            w.write(scene(1, i))
    return path


def test_a_synthetic_two_shot_clip_is_cut_at_the_join(tmp_path):
    clip = two_shot_clip(tmp_path / "two.mp4", 30, 30)
    cuts = detect_cuts(clip, 0, None, SceneDetectShots())
    assert len(cuts) == 1 and abs(cuts[0] - 30) <= 1
    assert detect_cuts(clip, 0, 20, SceneDetectShots()) == []
    content = SceneDetectShots(AnalysisSettings(shot_threshold=27.0), method="content")
    assert [abs(c - 30) <= 1 for c in content.detect(clip, 0, 60)] == [True]


def test_a_shot_with_no_face_gives_warnings_not_errors(tmp_path):
    clip = two_shot_clip(tmp_path / "noface.mp4", 16, 16)
    done = []
    result = analyze_shot(clip, 0, None, progress=lambda d, t: done.append((d, t)))
    assert result.tracks == [] and result.coverage == 0.0
    assert any("no face found" in w for w in result.warnings)
    assert result.cuts and abs(result.cuts[0] - 16) <= 1
    assert done[-1] == (32, 32)


def test_bad_sources_and_ranges_raise_media_errors(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        analyze_shot(tmp_path / "missing.mov")
    junk = tmp_path / "junk.mov"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(MediaError):
        analyze_shot(junk)
    clip = two_shot_clip(tmp_path / "c.mp4", 5, 5)
    with pytest.raises(MediaError, match="outside"):
        analyze_shot(clip, 4, 40)


def _fake_analysis(source: Path) -> ShotAnalysis:
    rng = np.random.default_rng(0)
    track = FaceTrack(
        track_id=0,
        frames=np.arange(3, 8),
        landmarks=rng.random((5, 68, 2), dtype=np.float32),
        boxes=rng.random((5, 4), dtype=np.float32),
        raw_landmarks=rng.random((5, 68, 2), dtype=np.float32),
        detected=np.array([1, 0, 1, 1, 1], bool),
        descriptors=rng.random((2, 128), dtype=np.float32),
        actor="anna",
        actor_distance=0.41,
    )
    return ShotAnalysis(
        source=source, start=10, stop=20, fps=Fraction(30000, 1001), width=64, height=48,
        cuts=[15], tracks=[track], warnings=["w"], faces_per_frame=np.ones(10, np.int16),
    )  # fmt: skip


def test_records_round_trip_through_npz_and_json_without_pickles(tmp_path):
    a = _fake_analysis(tmp_path / "src.mov")
    a.save(tmp_path / "entry")
    meta = json.loads((tmp_path / "entry" / "analysis.json").read_text())
    assert meta["fps"] == [30000, 1001] and meta["coverage"] == 1.0
    with zipfile.ZipFile(tmp_path / "entry" / "tracks.npz") as z:
        for name in z.namelist():
            with z.open(name) as f:
                assert b"pickle" not in f.read(200)
    b = ShotAnalysis.load(tmp_path / "entry")
    assert (b.start, b.stop, b.fps, b.cuts, b.warnings) == (
        10,
        20,
        Fraction(30000, 1001),
        [15],
        ["w"],
    )
    (t,) = b.tracks
    assert t.actor == "anna" and t.actor_distance == pytest.approx(0.41)
    assert np.array_equal(t.landmarks, a.tracks[0].landmarks)
    assert np.array_equal(t.detected, a.tracks[0].detected)
    assert t.descriptor.shape == (128,) and t.at(3) == 0 and t.at(8) is None


def test_the_cache_is_keyed_by_content_range_and_settings(tmp_path, monkeypatch):
    clip = two_shot_clip(tmp_path / "c.mp4", 6, 6)
    cache_dir = tmp_path / "cache"
    calls = []
    real = shot_analysis._analyze

    def counting(*args, **kwargs):
        calls.append(args[2:4])
        return real(*args, **kwargs)

    monkeypatch.setattr(shot_analysis, "_analyze", counting)
    first = analyze_shot(clip, 0, 12, cache_dir=cache_dir)
    again = analyze_shot(clip, 0, 12, cache_dir=cache_dir)
    assert len(calls) == 1 and again.seconds == 0.0 and again.cuts == first.cuts
    # Identity and mask settings do not touch the stored analysis; detection settings do.
    analyze_shot(
        clip, 0, 12, settings=AnalysisSettings(identity_threshold=0.5), cache_dir=cache_dir
    )
    assert len(calls) == 1
    analyze_shot(clip, 0, 12, settings=AnalysisSettings(detect_every=2), cache_dir=cache_dir)
    analyze_shot(clip, 0, 8, cache_dir=cache_dir)
    assert len(calls) == 3
    # A copy under another name hits; a changed file misses.
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(clip.read_bytes())
    analyze_shot(copy, 0, 12, cache_dir=cache_dir)
    assert len(calls) == 3
    two_shot_clip(clip, 8, 4)
    analyze_shot(clip, 0, 12, cache_dir=cache_dir)
    assert len(calls) == 4
    assert not list(cache_dir.rglob("*.pkl")) and not list(cache_dir.rglob("*.pickle"))


def test_file_hash_is_content_based_and_memoised(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(b"x" * 10_000_000)
    b.write_bytes(b"x" * 10_000_000)
    assert cache.file_hash(a, tmp_path) == cache.file_hash(b, tmp_path)
    index = json.loads((tmp_path / "hashes.json").read_text())
    assert str(a.resolve()) in index
    b.write_bytes(b"x" * 9_999_999 + b"y")
    assert cache.file_hash(a, tmp_path) != cache.file_hash(b, tmp_path)
