"""The exemplar's shape target: the clean viseme-table driver follows the dub's visemes on the
actor's own shapes, is the default, opens no learned driver, and the research-only one warns."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from lipdub.analysis.mouth_class import MouthScale, closed_level, mouth_classes, mouth_geometry
from lipdub.config.settings import Settings
from lipdub.exemplar import target
from lipdub.exemplar.select import apart_margin
from lipdub.exemplar.target import (
    ActorMouths,
    LearnedDriver,
    TableConfig,
    VisemeTableDriver,
    class_means,
    fit_basis,
    open_driver,
)
from lipdub.manifest import VISEME_TABLE, load_manifest
from lipdub.phonetics.track import Closure, VisemeTrack
from lipdub.phonetics.visemes import Viseme
from lipdub.plugins.generator_exemplar import create, lipdub_generators
from lipdub.render import fingerprint

FPS = Fraction(25)
REPO = Path(__file__).resolve().parents[2]


def mouth(width: float, gap: float, lip: float = 0.1) -> np.ndarray:
    """(20, 2) mouth shape in IOD (dlib 48–67 order): ``width`` corner to corner, inner lips
    ``gap`` apart, lips ``lip`` thick."""
    out = np.zeros((20, 2))
    for k in range(12):  # Outer lips, from the left corner over the top.
        a = np.pi - 2 * np.pi * k / 12
        out[k] = [width / 2 * np.cos(a), -(gap / 2 + lip) * np.sin(a)]
    for k in range(8):  # Inner lips.
        a = np.pi - 2 * np.pi * k / 8
        out[12 + k] = [0.4 * width * np.cos(a), -(gap / 2) * np.sin(a)]
    return out


#: (width, gap) of each kind of frame in the constructed bank, IOD.
KINDS = {
    "neutral": (0.90, 0.10),
    "rounded": (0.68, 0.12),
    "spread": (1.12, 0.08),
    "open": (0.95, 0.35),
    "closed": (0.90, 0.0),
}


def bank(seed: int = 0, n: int = 300, kinds: tuple[str, ...] = tuple(KINDS)) -> np.ndarray:
    """(n, 20, 2) shapes of an actor who shows every kind of ``kinds``, with landmark noise."""
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(kinds), n)
    shapes = np.stack([mouth(*KINDS[kinds[k]]) for k in which])
    return (shapes + rng.normal(0, 0.004, shapes.shape)).astype(np.float32)


def actor_of(driver: VisemeTableDriver, shapes: np.ndarray) -> tuple[object, ActorMouths]:
    """The basis and the :class:`ActorMouths` the track would give the driver."""
    basis = driver.basis(shapes)
    geom = mouth_geometry(shapes)
    classes = mouth_classes(geom, MouthScale.of(geom))
    return basis, ActorMouths(basis.project(shapes), classes, geom.gap, geom.width)


def speech(seconds: float) -> np.ndarray:
    """A dub that speaks throughout (−23 dBFS): the table's target is not the quiet one."""
    t = np.arange(round(16000 * seconds)) / 16000
    return (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_the_dubs_pauses_ask_for_closed_lips() -> None:
    """On quiet dub frames the recognizer says "neutral", and a talking actor's neutral frames
    are parted: the target is the closed mouth there, the table's where the dub speaks."""
    driver = VisemeTableDriver(replace(TableConfig(), smooth_frames=0.0))
    _, actor = actor_of(driver, bank())
    audio = speech(1.0)
    audio[: 16000 // 2] = 0  # Quiet for the first 12.5 frames, then speaking.
    coef = driver.targets(actor, audio, FPS, np.arange(25), track_of([None] * 25))
    means = class_means(actor)
    np.testing.assert_allclose(coef[:10], np.tile(means[int(Viseme.CLOSED)], (10, 1)), atol=1e-6)
    np.testing.assert_allclose(coef[15:], np.tile(means[int(Viseme.NEUTRAL)], (10, 1)), atol=1e-6)


def track_of(rows: list[Viseme | None], closures: tuple[int, ...] = ()) -> VisemeTrack:
    """A viseme track with one-hot posteriors (None: no evidence) and p/b/m at ``closures``."""
    post = np.zeros((len(rows), len(Viseme)), np.float32)
    for t, v in enumerate(rows):
        if v is not None:
            post[t, int(v)] = 1.0
    marks = tuple(Closure(f, f / 25, "p", 1.0) for f in closures)
    return VisemeTrack(post, marks, "script", "test")


def test_the_basis_is_the_actors_own_pca_and_round_trips() -> None:
    shapes = bank()
    basis = fit_basis(shapes)
    assert 1 <= basis.components < target.MAX_COMPONENTS  # Width and opening: two.
    np.testing.assert_allclose(basis.basis @ basis.basis.T, np.eye(basis.components), atol=1e-9)
    back = basis.unproject(basis.project(shapes))
    # The kept components explain ≥ VARIANCE_KEPT of the shapes' spread around their mean (under
    # the cap, as here).
    resid = ((back - shapes) ** 2).sum()
    total = ((shapes - shapes.mean(0)) ** 2).sum()
    assert resid / total <= 1 - target.VARIANCE_KEPT + 1e-6


def test_the_target_follows_the_dubs_visemes() -> None:
    """Rounded frames ask for a narrower mouth than spread ones, open for a wider gap than
    neutral, and a p/b/m for the actor's closed lips."""
    driver = VisemeTableDriver()
    basis, actor = actor_of(driver, bank())
    rows = [Viseme.ROUNDED] * 15 + [Viseme.SPREAD] * 15 + [Viseme.OPEN] * 15 + [None] * 25
    visemes = track_of(rows, closures=(65,))
    frames = np.arange(len(rows))
    coef = driver.targets(actor, speech(3.0), FPS, frames, visemes)
    assert coef.shape == (len(rows), basis.components)
    geom = mouth_geometry(basis.unproject(coef))
    # Five frames inside each stretch, away from the smoothing at its edges.
    rounded, spread, opened, neutral = (slice(a + 5, a + 10) for a in (0, 15, 30, 45))
    assert geom.width[rounded].mean() < geom.width[spread].mean() - 0.2
    assert geom.gap[opened].mean() > geom.gap[neutral].mean() + 0.1
    # The p/b/m (frame 65 and its lead frame) pulls the target towards closed lips. σ = 3 spreads
    # a 2-frame closure thin: the selection's hard constraint, not the target, makes the lips meet.
    plain = driver.targets(actor, speech(3.0), FPS, frames, track_of(rows))
    without = mouth_geometry(basis.unproject(plain)).gap
    assert geom.gap[64:66].min() < without[64:66].min() - 0.015
    np.testing.assert_allclose(geom.gap[:50], without[:50], atol=1e-6)  # Far from it: no change.


def test_a_class_the_bank_lacks_falls_back_to_neutral() -> None:
    driver = VisemeTableDriver()
    _, actor = actor_of(driver, bank(kinds=("neutral", "open", "closed", "spread")))
    means = class_means(actor)
    assert not (actor.classes == int(Viseme.LIP_TEETH)).any()
    np.testing.assert_array_equal(means[int(Viseme.LIP_TEETH)], means[int(Viseme.NEUTRAL)])


def test_frames_past_the_dub_ask_for_the_neutral_mouth() -> None:
    driver = VisemeTableDriver(replace(TableConfig(), smooth_frames=0.0))
    _, actor = actor_of(driver, bank())
    visemes = track_of([Viseme.OPEN] * 10)
    coef = driver.targets(actor, speech(1.0), FPS, np.arange(20), visemes)
    neutral = class_means(actor)[int(Viseme.NEUTRAL)]
    np.testing.assert_allclose(coef[12:], np.tile(neutral, (8, 1)), atol=1e-6)
    assert not np.allclose(coef[:5], neutral, atol=1e-3)


def test_the_default_driver_is_the_viseme_table_and_loads_no_checkpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a learned driver was loaded on the default path")

    import lipdub.model.driver

    monkeypatch.setattr(lipdub.model.driver, "load_driver", refuse)
    assert load_manifest().default_driver == VISEME_TABLE
    assert isinstance(create({}).driver, VisemeTableDriver)
    assert isinstance(open_driver(VISEME_TABLE), VisemeTableDriver)
    (choice,) = lipdub_generators()  # What `lipdub plugins list` says of its terms.
    assert choice.licence.startswith("clean") and "mouth-driver-v1" in choice.licence


def test_the_default_driver_imports_no_torch() -> None:
    # A fresh process: the rule-based driver needs no torch (its import costs ~1 CPU s a render).
    code = (
        "import sys\n"
        "from lipdub.exemplar.target import open_driver\n"
        "open_driver('viseme-table')\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-1000:]


def test_choosing_mouth_driver_v1_warns_with_its_terms(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lipdub.exemplar.target"):
        driver = open_driver("mouth-driver-v1")
    assert isinstance(driver, LearnedDriver)
    assert "mouth-driver-v1" in caplog.text and "research-only" in caplog.text


def test_the_fingerprint_names_the_rule_and_needs_no_driver_file() -> None:
    exemplar = Settings(generator="exemplar")
    assert fingerprint.exemplar_driver(exemplar) == VISEME_TABLE
    assert not [m for m in fingerprint.model_files(exemplar) if m.role == "driver"]
    options = {"generator": {"driver": "mouth-driver-v1"}}
    chosen = Settings(generator="exemplar", stage_options=options)
    (model,) = [m for m in fingerprint.model_files(chosen) if m.role == "driver"]
    assert model.path.name == "mouth-driver-v1.safetensors"
    assert fingerprint.exemplar_driver(Settings(generator="passthrough")) is None
    # The rule's constants are in its digest: a changed rule makes its outputs stale.
    assert TableConfig().digest() != replace(TableConfig(), smooth_frames=2.0).digest()


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_the_default_driver_opens_no_weights_file(tmp_path: Path) -> None:
    """Traced: building the default exemplar generator opens no mouth-driver file."""
    log = tmp_path / "trace"
    code = "from lipdub.plugins.generator_exemplar import create; create({})"
    subprocess.run(
        ["strace", "-f", "-e", "trace=openat", "-o", str(log), sys.executable, "-c", code],
        check=True,
        cwd=REPO,
    )
    opened = log.read_text()
    assert "weights/manifest.toml" in opened  # The trace saw the manifest being read.
    assert "mouth-driver" not in opened


def test_lips_close_on_each_p_b_m_and_its_lead_frame_and_nowhere_else() -> None:
    """The target is the closed mouth on a p/b/m's frame and the one before it, and apart by
    the margin on every other speaking frame: the smoothing does not spread a closure."""
    driver = VisemeTableDriver()
    shapes = bank()
    basis, actor = actor_of(driver, shapes)
    level = closed_level(mouth_geometry(shapes).gap)
    assert level is not None
    rows = ([Viseme.SPREAD] * 5 + [None] * 5 + [Viseme.ROUNDED] * 5 + [Viseme.OPEN] * 5) * 3
    visemes = track_of(rows, closures=(20, 41))
    gap = mouth_geometry(
        basis.unproject(driver.targets(actor, speech(2.4), FPS, np.arange(60), visemes))
    ).gap
    shut = np.flatnonzero(gap <= level)
    assert shut.tolist() == [19, 20, 40, 41]
    others = np.setdiff1d(np.arange(60), shut)
    assert (gap[others] >= level + apart_margin(mouth_geometry(shapes).gap)).all()


def test_a_gap_between_words_is_not_a_pause() -> None:
    """A quiet stretch shorter than MIN_PAUSE_S (a word gap, a stop's silent closure) keeps the
    speaking target; a longer one asks for closed lips."""
    driver = VisemeTableDriver(replace(TableConfig(), smooth_frames=0.0))
    _, actor = actor_of(driver, bank())
    audio = speech(2.4)
    per_frame = 16000 // 25
    audio[10 * per_frame : 12 * per_frame] = 0  # 80 ms.
    audio[30 * per_frame : 46 * per_frame] = 0  # 640 ms.
    coef = driver.targets(actor, audio, FPS, np.arange(60), track_of([None] * 60))
    means = class_means(actor)
    neutral, closed = means[int(Viseme.NEUTRAL)], means[int(Viseme.CLOSED)]
    np.testing.assert_allclose(coef[5:25], np.tile(neutral, (20, 1)), atol=1e-6)
    np.testing.assert_allclose(coef[31:44], np.tile(closed, (13, 1)), atol=1e-6)
    assert TableConfig().min_pause_s * 25 > 2  # The short one is below the rule, not at it.


def test_rounded_and_spread_ask_for_the_actors_narrowest_and_widest_open_mouths() -> None:
    """Rounded is the mean of the narrowest apart bank frames, spread of the widest: narrower
    and wider than the means of the bank's rounded and spread classes (25 % quantiles), and
    neither closed."""
    rng = np.random.default_rng(3)
    widths = rng.uniform(0.62, 1.15, 400)
    gaps = np.where(rng.uniform(size=400) < 0.15, 0.0, rng.uniform(0.06, 0.3, 400))
    shapes = np.stack([mouth(w, g) for w, g in zip(widths, gaps, strict=True)])
    shapes = (shapes + rng.normal(0, 0.003, shapes.shape)).astype(np.float32)
    driver = VisemeTableDriver()
    basis, actor = actor_of(driver, shapes)
    geom = mouth_geometry(basis.unproject(class_means(actor)))
    rounded, spread = int(Viseme.ROUNDED), int(Viseme.SPREAD)
    real = mouth_geometry(shapes)
    assert geom.width[rounded] < real.width[actor.classes == rounded].mean() - 0.03
    assert geom.width[spread] > real.width[actor.classes == spread].mean() + 0.03
    level = closed_level(real.gap)
    assert level is not None
    assert min(geom.gap[rounded], geom.gap[spread]) >= level + apart_margin(real.gap)
    # Without the gaps and widths (another caller): the class means, as before.
    plain = class_means(ActorMouths(actor.coef, actor.classes))
    np.testing.assert_allclose(
        plain[rounded], actor.coef[actor.classes == rounded].mean(0), rtol=1e-5
    )
