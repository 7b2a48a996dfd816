"""The QC page of a folder shows every render in it (issue 27: a one-clip render replaced the
folder's page with a page showing only itself)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

from click.testing import CliRunner

from lipdub.cli import main
from tests.conftest import make_video


def test_one_clip_renders_add_up_to_one_page(tmp_path: Path, dub_wav: Path) -> None:
    video = make_video(tmp_path / "in.mov", 50, Fraction(25))  # 2 s, as long as the dub.
    out = tmp_path / "renders"
    for name in ("a.mov", "b.mov"):
        args = ["render", "--video", str(video), "--audio", str(dub_wav), "--generator"]
        args += ["passthrough", "--json", "-o", str(out / name)]
        res = CliRunner().invoke(main, args, catch_exceptions=False)
        assert res.exit_code == 0, res.output
    records = json.loads((out / "lipdub-qc.json").read_text())
    assert sorted(Path(r["output"]).name for r in records) == ["a.mov", "b.mov"]
    page = (out / "lipdub-qc.html").read_text()
    assert "a.mov" in page and "b.mov" in page
