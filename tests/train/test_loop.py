"""The one training loop: budgets over resumed runs, intervals, saves, per-step reports."""

from __future__ import annotations

import pytest

from lipdub.train.loop import train_loop


def test_steps_resume_where_a_run_stopped_and_count_to_the_same_budget() -> None:
    taken, saved, every3, reports = [], [], [], []
    result = train_loop(
        lambda k: taken.append(k) or {"a": float(k), "b": 1.0},
        max_steps=10,
        start=4,
        intervals=[(3, every3.append)],
        save=saved.append,
        after_step=lambda s, terms, _: reports.append((s, terms["a"])),
    )
    assert taken == [4, 5, 6, 7, 8, 9]  # Step numbers go on from the resumed run's.
    assert (result.start, result.steps, result.run_steps) == (4, 10, 6)
    assert every3 == [6, 9] and saved == [10]  # Multiples of 3 done; saved once, at the end.
    assert reports == [(5, 4.0), (6, 5.0), (7, 6.0), (8, 7.0), (9, 8.0), (10, 9.0)]
    assert result.means(first=True, n=2) == {"a": 4.5, "b": 1.0}
    assert result.means(n=2) == {"a": 8.5, "b": 1.0}


def test_the_time_budget_stops_a_run_without_a_step_budget() -> None:
    result = train_loop(lambda k: {"a": 0.0}, max_steps=None, max_minutes=1e-9)
    assert result.run_steps == 1  # Checked after each step: one step, then out of time.
    with pytest.raises(ValueError, match="step or a time budget"):
        train_loop(lambda k: {"a": 0.0}, max_steps=None)


def test_an_interval_report_comes_before_the_step_report() -> None:
    """Personalization reports the held-out metrics measured at a step with that step."""
    seen: list[str] = []
    train_loop(
        lambda k: {"a": 0.0},
        max_steps=2,
        intervals=[(2, lambda s: seen.append(f"measure {s}"))],
        after_step=lambda s, *_: seen.append(f"report {s}"),
    )
    assert seen == ["report 1", "measure 2", "report 2"]
