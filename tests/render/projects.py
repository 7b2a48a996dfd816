"""One-shot projects on the real clips of ../shared/data, for the render tests that need them."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import shared_data


def one_shot_project(root: Path, clip: str, dub: str, frames: int) -> None:
    """lipdub.toml (draft, CPU, exemplar, pad-trim) and a shots.yaml of shot ``s1``: the first
    ``frames`` frames of ``clip`` with one dub ``de`` (skips the test without ../shared)."""
    data = shared_data()
    (root / "lipdub.toml").write_text(
        '[project]\nname = "t"\npreset = "draft"\ndevice = "cpu"\n'
        '[stages]\ngenerator = "exemplar"\n[settings]\naudio_fit = "pad-trim"\n'
    )
    (root / "shots.yaml").write_text(
        f"shots:\n  - {{id: s1, source: {data / 'clips' / clip}, in: 0, out: {frames}, "
        f"dubs: [{{name: de, audio: {data / 'audio' / dub}}}]}}\n"
    )
