"""Renders pick up an actor's personalization file; personalization runs as a Ray task.

The render check uses real footage (../shared/data): the shot is rendered with the actor's file
and with ``--no-personal`` (lossless FFV1); the two may differ only inside the blend mask, and
must differ there.
"""

from __future__ import annotations

import importlib.util
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from lipdub.analysis.align import paste_region, scale_of, similarity_to_template, transform_points
from lipdub.analysis.masks import UShapePlanner
from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.cli.personalize import personalize as personalize_cmd
from lipdub.config.project import PERSONAL_FILE
from lipdub.config.settings import Settings
from lipdub.data.clips import load_clip
from lipdub.media.read import open_video
from lipdub.model.config import LITE
from lipdub.model.engine import StyleSyncEngine
from lipdub.model.personal import save_personal
from lipdub.plugin_manager import BUILTIN_PLUGINS
from lipdub.train import personal_eval as E
from lipdub.train import personalize as P
from tests.conftest import make_video, shared_data
from tests.train.test_personalize import FOOTAGE, FPS, random_init, write_prepared_clip

FIRST, FRAMES = 10, 30
ACTOR = "lrs"
REGISTERED = "lipdub.plugins.personalizer_stylesync" in BUILTIN_PLUGINS
#: The engine applies ``TrackClip.personal`` (the patch proposed with this test's issue).
ENGINE_APPLIES_PERSONAL = hasattr(StyleSyncEngine, "use_personal")


def personal_file(folder: Path, dest: Path) -> None:
    """A real (if tiny) personalization of the random-init lite model: two steps."""
    train, held = E.split_held_out(load_clip(write_prepared_clip(folder, "a")), 0.15)
    trainer = P.PersonalTrainer(
        random_init(), P.PersonalSettings(steps=2, batch_size=1), torch.device("cpu")
    )
    P.train_loop(trainer, [train], [held], trainer.s)
    dest.parent.mkdir(parents=True)
    save_personal(trainer.baked(), trainer.base_state, dest, ACTOR)


def blend_masks(video: Path, cache: Path) -> list[np.ndarray]:
    """The renderer's blend mask of every frame (as tests/render/test_render_shared.py)."""
    (track,) = analyze_shot(video, FIRST, FIRST + FRAMES, cache_dir=cache).tracks
    planner, out = UShapePlanner(), []
    with open_video(video) as src:
        for i, frame in enumerate(src.frames(FIRST, FIRST + FRAMES)):
            j = track.at(i)
            m = similarity_to_template(track.landmarks[j], LITE.resolution)
            box = paste_region(m, LITE.resolution, frame.shape)
            crop_mask = planner.plan(transform_points(m, track.landmarks[j]), LITE.resolution)
            feather = Settings.feather_fraction * LITE.resolution / scale_of(m)
            mask = np.zeros(frame.shape[:2], np.float32)
            x0, y0, x1, y1 = box
            mask[y0:y1, x0:x1] = planner.blend_mask(crop_mask, m, box, feather)
            out.append(mask)
    return out


@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.xfail(
    not ENGINE_APPLIES_PERSONAL,
    reason="StyleSyncEngine ignores TrackClip.personal: renders do not use actor files yet",
    strict=True,
)
def test_render_with_actor_file_differs_only_inside_the_mask(tmp_path: Path) -> None:
    from lipdub.cli import main

    data = shared_data()
    video = data / "clips" / "deep_avsr__av_demo_00019.mp4"
    dub = data / "audio" / "dreamtalk__data_audio_french1.wav"
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\npreset = "draft"\ndevice = "cpu"\n'
        '[stages]\ngenerator = "stylesync"\n'
        '[settings]\ncodec = "ffv1"\ncontainer = ".mkv"\nweights = "random-init"\n'
        "rest_on_silence = false\n"  # The dub's pauses would show the source, not the file.
        f'[actors.{ACTOR}]\nfootage = ["{video}"]\n'
    )
    (tmp_path / "shots.yaml").write_text(
        f"shots:\n  - {{id: s1, source: {video}, in: {FIRST}, out: {FIRST + FRAMES}, "
        f"actors: [{ACTOR}], dubs: [{{name: fr, audio: {dub}}}]}}\n"
    )
    personal_file(tmp_path / "prep", tmp_path / PERSONAL_FILE.format(name=ACTOR))
    out = tmp_path / "renders" / "s1_fr.mkv"
    renders = {}
    for label, extra in (("general", ["--no-personal"]), ("personal", [])):
        res = CliRunner().invoke(main, ["render", str(tmp_path / "shots.yaml"), "--json", *extra])
        assert res.exit_code == 0, res.output
        with open_video(out) as f:
            renders[label] = list(f.frames())
        out.unlink()
    masks = blend_masks(video, tmp_path / ".lipdub" / "cache")
    changed = 0
    for i, (a, b, mask) in enumerate(
        zip(renders["general"], renders["personal"], masks, strict=True)
    ):
        outside = mask == 0
        assert np.array_equal(a[outside], b[outside]), f"frame {i} changed outside the mask"
        changed += int((a[~outside] != b[~outside]).any())
    assert changed == FRAMES  # The actor file was used for every frame of the track.


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
@pytest.mark.skipif(not REGISTERED, reason="personalizer plugin not in the built-in tuple yet")
def test_personalize_runs_as_a_ray_task(tmp_path: Path) -> None:
    (tmp_path / FOOTAGE).parent.mkdir()
    make_video(tmp_path / FOOTAGE, 5, Fraction(FPS))
    write_prepared_clip(tmp_path / ".lipdub" / "personal" / "anna" / "prepared", "anna")
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\ndevice = "cpu"\n[stages]\ngenerator = "stylesync"\n'
        '[settings]\nweights = "random-init"\nmodel = "lite"\n'
        f'[actors.anna]\nfootage = ["{FOOTAGE}"]\n'
    )
    args = ["--actor", "anna", "--project", str(tmp_path), "--json", "--steps", "1"]
    res = CliRunner().invoke(personalize_cmd, [*args, "--executor", "ray"])
    assert res.exit_code == 0, res.output
    (done,) = [json.loads(x) for x in res.output.splitlines() if x.startswith('{"event": "fin')]
    assert Path(done["file"]).is_file() and Path(done["card"]).is_file()
