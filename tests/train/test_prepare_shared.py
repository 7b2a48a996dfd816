"""``data prepare`` on a short real clip from ../shared/data (skipped without it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lipdub.data.clips import load_clip
from lipdub.data.prepare import prepare, read_clips_tsv, read_crops_video

SHORT_CLIP = "clips/deep_avsr__av_demo_00006.mp4"  # 0.84 s, 160×160, separate WAV.


def _shared() -> Path:
    data = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    if not (data / "clips.tsv").is_file():
        pytest.skip(f"real media not available ({data} is absent)")
    return data


@pytest.mark.shared
def test_tsv_splits_never_share_a_speaker() -> None:
    data = _shared()
    train = {s.speaker for s in read_clips_tsv(data / "clips.tsv", "train")}
    test = {s.speaker for s in read_clips_tsv(data / "clips.tsv", "test")}
    assert train and test and not train & test


@pytest.mark.shared
def test_prepare_short_real_clip(tmp_path: Path) -> None:
    data = _shared()
    specs = [s for s in read_clips_tsv(data / "clips.tsv", "train") if s.video.name in SHORT_CLIP]
    assert len(specs) == 1 and specs[0].audio is not None  # Paired with its separate WAV.
    (info,) = prepare(specs, tmp_path, size=128)
    assert info["frames"] >= 20 and info["offset_method"] == "unestimated"
    assert info["offset_frames"] is None  # No SyncNet given: not faked.
    crops = read_crops_video(tmp_path / info["clip_id"] / "crops_128.mp4")
    assert crops.shape == (info["frames"], 128, 128, 3)
    clip = load_clip(tmp_path / info["clip_id"])
    assert clip.mel.shape == (info["frames"], 1, 80, 16)
    # The paired WAV is kept whole (0.96 s here; the video is 0.84 s) and covers every frame.
    assert abs(len(clip.audio) / 16000 - info["audio_seconds"]) < 1e-3
    assert len(clip.audio) / 16000 >= info["frames"] / 25
    # The U mask covers the lower face: mostly below the crop's middle (its arms reach up the
    # cheeks; ratio ≈ 1.95 on this clip), not the eyes' row here.
    m = clip.masks.astype(np.float32).mean(axis=(0, 2))
    assert m[64:].sum() > 1.5 * m[:64].sum() and m[40] == 0
    # Eyes land on the template: landmarks 36-47 near y = 0.31·128.
    eyes_y = clip.landmarks[:, 36:48, 1].mean()
    assert abs(eyes_y - 0.31 * 128) < 3
