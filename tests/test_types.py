"""The package type-checks clean, so a hint that drifts from the code fails the test suite.

mypy runs over lipdub/ with the project's ``[tool.mypy]`` settings (pyproject.toml), in a
subprocess (its memory goes back when it ends). Its incremental cache lives under the repository's
ignored ``.mypy_cache``: mypy re-checks every module whose source, options, dependencies or mypy
version changed, so a warm cache only saves time (about 30 s of CPU cold, a few seconds warm).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".mypy_cache" / "tests"
#: The issue's limit: every ``# type: ignore`` left is a known gap in a dependency's types.
MAX_IGNORES = 10
_IGNORE = re.compile(r"#\s*type:\s*ignore(\[[a-z0-9-]+(?:,\s*[a-z0-9-]+)*\])?(.*)$")


def test_lipdub_type_checks_clean():
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(CACHE),
            "--no-error-summary",
            str(ROOT / "lipdub"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert done.returncode == 0 and not errors, (
        f"mypy found {len(errors)} error(s) in lipdub/:\n"
        + "\n".join(errors or done.stdout.splitlines())
        + done.stderr
    )


def ignores(root: Path) -> list[tuple[str, str, str]]:
    """(file:line, error codes, reason) of every ``# type: ignore`` under ``root``; the reason is
    the comment after it, else the comment line just above it."""
    found = []
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            match = _IGNORE.search(line)
            if match is None:
                continue
            codes, after = match.group(1) or "", match.group(2).strip()
            above = lines[i - 1].strip() if i else ""
            reason = after.lstrip("#").strip() or (
                above.lstrip("#").strip() if above[:1] == "#" else ""
            )
            found.append((f"{path.relative_to(root.parent)}:{i + 1}", codes, reason))
    return found


def test_ignores_are_few_and_each_names_its_code_and_reason():
    found = ignores(ROOT / "lipdub")
    assert len(found) <= MAX_IGNORES, (
        f"{len(found)} `# type: ignore` in lipdub/ (at most {MAX_IGNORES})"
    )
    bare = [where for where, codes, reason in found if not codes or not reason]
    assert not bare, f"each `# type: ignore` needs [its-code] and a reason beside or above: {bare}"


def test_the_ignore_finder_sees_a_bare_ignore(tmp_path: Path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text(
        "x = 1  # type: ignore\n"
        "# numpy's stub lacks it.\n"
        "y = 2  # type: ignore[attr-defined]\n"
        "z = 3  # type: ignore[misc]  # the queue holds T\n"
    )
    assert ignores(pkg) == [
        ("pkg/m.py:1", "", ""),
        ("pkg/m.py:3", "[attr-defined]", "numpy's stub lacks it."),
        ("pkg/m.py:4", "[misc]", "the queue holds T"),
    ]
