"""Every stage gets its options one way: its block in `stage_options`, merged across layers,
checked with the place it was written, and the deprecated blocks mapped onto it (with a warning).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import pytest

from lipdub.analysis.settings import AnalysisSettings
from lipdub.config.plan import load_plan
from lipdub.config.project import load_project
from lipdub.config.settings import check_layer, resolve
from lipdub.errors import ConfigError
from tests.conftest import make_video

TOML = """\
[project]
name = "film"
preset = "draft"

[stages]
blender = "laplacian"

[stage_options.blender]
levels = 5

[stage_options.tracker]
max_gap = 4
min_track_frames = 3
"""

SHOTS = """\
defaults:
  stage_options:
    tracker: {max_gap: 6}
shots:
  - id: a
    source: reel.mov
    dubs: [{name: de, audio: de.wav}]
    settings:
      stage_options:
        tracker: {iou_threshold: 0.5}
  - id: b
    source: reel.mov
    dubs: [{name: de, audio: de.wav}]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    make_video(tmp_path / "reel.mov", 10, Fraction(25))
    (tmp_path / "de.wav").write_bytes(b"RIFF")
    (tmp_path / "lipdub.toml").write_text(TOML)
    (tmp_path / "shots.yaml").write_text(SHOTS)
    return tmp_path


def plan_of(root: Path, cli: dict | None = None):
    return load_plan(root / "shots.yaml", load_project(root), cli or {})


def error_of(root: Path, toml: str | None = None, shots: str | None = None) -> str:
    if toml is not None:
        (root / "lipdub.toml").write_text(toml)
    if shots is not None:
        (root / "shots.yaml").write_text(shots)
    with pytest.raises(ConfigError) as info:
        plan_of(root)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_blocks_merge_key_by_key_project_then_defaults_then_shot_then_cli(project: Path):
    cli = {"stage_options": {"tracker": {"min_track_frames": 9}}}
    a, b = plan_of(project, cli).shots
    assert a.settings.options("blender") == {"levels": 5}
    assert a.settings.options("tracker") == {
        "max_gap": 6,  # shots.yaml `defaults:` over lipdub.toml's 4.
        "min_track_frames": 9,  # The command line over lipdub.toml's 3.
        "iou_threshold": 0.5,  # The shot's own.
    }
    assert b.settings.options("tracker") == {"max_gap": 6, "min_track_frames": 9}
    assert b.settings.options("masks") == {}


def test_the_analysis_record_sees_the_analysis_stages_blocks(project: Path):
    a, _ = plan_of(project).shots
    record = a.settings.analysis_settings()
    assert (record.max_gap, record.min_track_frames, record.iou_threshold) == (6, 3, 0.5)
    # The cache key is the one the old single `analysis` block gave for the same values.
    old = AnalysisSettings.from_options({"max_gap": 6, "min_track_frames": 3, "iou_threshold": 0.5})
    assert record.key() == old.key()


def test_an_unknown_stage_is_named_with_its_line_and_a_suggestion(project: Path):
    msg = error_of(project, toml=TOML.replace("[stage_options.tracker]", "[stage_options.trakcer]"))
    assert "lipdub.toml:11:" in msg and "unknown stage 'trakcer'" in msg
    assert "did you mean 'tracker'" in msg
    msg = error_of(project, toml=TOML, shots=SHOTS.replace("    tracker: {max", "    blendr: {max"))
    assert "shots.yaml:3:" in msg and "did you mean 'blender'" in msg


def test_a_block_may_not_set_a_setting_of_the_whole_render(project: Path):
    msg = error_of(project, toml=TOML.replace("levels = 5", "levels = 5\ndevice = 'cpu'"))
    assert "lipdub.toml:10:" in msg and "'device' is a setting of the whole render" in msg


def test_options_written_under_stages_get_pointed_to_stage_options(project: Path):
    toml = TOML.replace('blender = "laplacian"\n\n[stage_options.blender]', "[stages.blender]")
    msg = error_of(project, toml=toml)
    assert "[stages] picks each stage's choice" in msg and "[stage_options.blender]" in msg


def test_deprecated_blocks_map_onto_the_new_ones_with_a_warning(
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.WARNING, logger="lipdub.config")
    layer = check_layer(
        {
            "generator": "exemplar",
            "blend": {"color_match": False, "feather_fraction": 0.05},
            "exemplar": {"holdout": 10},
            "executor_options": {"num_cpus": 2},
            "analysis": {"mask_top": 0.4, "shot_method": "content", "detect_every": 3},
        },
        "old.yaml",
    )
    s = resolve(layer)
    assert s.options("blender") == {"color_match": False}
    assert s.feather_fraction == 0.05
    assert s.options("generator") == {"holdout": 10}
    assert s.options("executor") == {"num_cpus": 2}
    assert s.options("masks") == {"mask_top": 0.4}
    assert s.options("shots") == {"shot_method": "content"}
    assert s.analysis == {"detect_every": 3}  # The analysis run's own stays where it was.
    said = caplog.text
    for new in ("stage_options.blender", "stage_options.generator", "stage_options.executor"):
        assert new in said
    assert "`analysis.mask_top` is deprecated" in said and "stage_options.masks" in said
    assert "detect_every" not in said


def test_deprecated_exemplar_block_reaches_only_the_exemplar_generator_as_before():
    layer = check_layer({"exemplar": {"holdout": 10}}, "old.yaml")
    assert resolve(layer, {"generator": "stylesync"}).options("generator") == {}
    assert resolve(layer, {"generator": "exemplar"}).options("generator") == {"holdout": 10}


def test_the_new_spelling_wins_over_the_deprecated_one():
    old = check_layer({"blend": {"levels": 2, "feather_fraction": 0.05}}, "shot")
    new = check_layer({"stage_options": {"blender": {"levels": 6}}, "feather_fraction": 0.1}, "p")
    s = resolve(new, old)  # Even from a lower layer.
    assert (s.options("blender"), s.feather_fraction) == ({"levels": 6}, 0.1)


def test_the_analysis_block_refuses_what_is_neither_its_own_nor_a_stage_option():
    with pytest.raises(ConfigError, match=r"unknown analysis setting 'detect_evry'.*did you mean"):
        check_layer({"analysis": {"detect_evry": 3}}, "x.yaml")


def test_precision_and_feather_fraction_are_checked_settings():
    assert resolve(check_layer({"precision": "fp32"}, "x")).precision == "fp32"
    with pytest.raises(ConfigError, match="precision = 'fp16' is not one of auto, fp32, bf16"):
        check_layer({"precision": "fp16"}, "x")
    with pytest.raises(ConfigError, match=r"feather_fraction must be in \[0, 0.5\)"):
        check_layer({"feather_fraction": 0.7}, "x")


def test_a_shot_that_picks_another_choice_can_drop_the_block_below_it(project: Path):
    own = "        tracker: {iou_threshold: 0.5}"
    (project / "shots.yaml").write_text(SHOTS.replace(own, own + "\n        blender: null"))
    a, b = plan_of(project).shots
    assert a.settings.options("blender") == {} and b.settings.options("blender") == {"levels": 5}


def test_the_project_init_template_parses_with_its_options_uncommented(tmp_path: Path):
    from lipdub.cli.project import TEMPLATE_TOML

    lines = TEMPLATE_TOML.format(name="t").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# [stage_options."))
    for i in range(start, len(lines)):
        if not lines[i].startswith("# "):
            break
        lines[i] = lines[i][2:]
    (tmp_path / "lipdub.toml").write_text("\n".join(lines) + "\n")
    s = resolve(load_project(tmp_path).layer)
    assert s.options("blender") == {"color_match": True} and s.options("generator") == {
        "holdout": 0
    }


def test_analysis_and_deprecated_values_are_type_checked_where_written():
    with pytest.raises(ConfigError, match=r"x\.yaml: analysis setting 'detect_every' must be int"):
        check_layer({"analysis": {"detect_every": "often"}}, "x.yaml")
    with pytest.raises(ConfigError, match=r"feather_fraction must be in \[0, 0.5\)"):
        check_layer({"blend": {"feather_fraction": 2.0}}, "x.yaml")
