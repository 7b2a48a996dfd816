"""The one training loop of lipdub: every trainer (SyncNet, mouth landmarks, mouth driver,
generator, personalization) runs its steps through :func:`train_loop`.

The loop owns what all of them share: a step budget counted over resumed runs (``start`` is the
step the run resumes at), a wall-time budget for this run, a log line with the mean of each loss
term and the speed every ``log_every`` steps, callbacks on step intervals (validation, samples,
held-out metrics), a save every ``save_every_s`` seconds of wall time and once at the end, and a
per-step callback (JSON lines, progress bars). The trainer owns its data, model and optimizers:
``step_fn(step)`` takes one optimisation step (however many networks it updates) and returns its
loss terms. :func:`run_steps` is the form for a single loss and a single optimizer.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

log = logging.getLogger(__name__)

#: ``step_fn(step)``: take optimisation step number ``step`` (0-based, counted over resumes)
#: and return its loss terms.
StepFn = Callable[[int], Mapping[str, float]]
#: ``callback(steps done)``, at an interval of steps or on a save.
AtStep = Callable[[int], None]
#: ``after_step(steps done, loss terms, seconds of this run)``.
AfterStep = Callable[[int, Mapping[str, float], float], None]


@dataclass
class LoopResult:
    """What :func:`train_loop` did in this run."""

    start: int  # Steps done before this run (resume).
    steps: int = 0  # Steps done in all, this run included.
    seconds: float = 0.0  # Wall time of this run.
    history: list[dict[str, float]] = field(default_factory=list)  # Loss terms, every step.

    @property
    def run_steps(self) -> int:
        """Steps taken in this run."""
        return self.steps - self.start

    def mean(self, key: str, first: bool = False, n: int = 50) -> float | None:
        """Mean of loss term ``key`` over this run's last (or ``first``) ``n`` steps."""
        part = self.history[:n] if first else self.history[-n:]
        return float(np.mean([h[key] for h in part])) if part else None

    def first_loss(self, n: int = 50) -> float | None:
        """Mean of the first loss term over this run's first ``n`` steps (one-loss trainers)."""
        return self.mean(next(iter(self.history[0])), True, n) if self.history else None

    def last_loss(self, n: int = 50) -> float | None:
        """Mean of the first loss term over this run's last ``n`` steps (one-loss trainers)."""
        return self.mean(next(iter(self.history[0])), False, n) if self.history else None

    def means(self, first: bool = False, n: int = 10) -> dict[str, float]:
        """Every loss term's mean over this run's last (or ``first``) ``n`` steps."""
        if not self.history:
            return {}
        means = {k: self.mean(k, first, n) for k in self.history[0]}
        return {k: m for k, m in means.items() if m is not None}  # None: n = 0 steps.


def train_loop(
    step_fn: StepFn,
    *,
    max_steps: int | None,
    max_minutes: float | None = None,
    start: int = 0,
    log_every: int = 100,
    intervals: Sequence[tuple[int, AtStep]] = (),
    save: AtStep | None = None,
    save_every_s: float = math.inf,
    after_step: AfterStep | None = None,
) -> LoopResult:
    """Take steps ``start``, ``start + 1``, … until either budget is spent.

    Arguments:
        step_fn: one optimisation step (see :data:`StepFn`).
        max_steps: step budget over all runs (None: only the time budget stops the loop).
        max_minutes: wall-time budget of this run, checked after each step (None: steps only).
        start: steps already done by earlier runs.
        log_every: steps between log lines (each loss term's mean over them, steps per second).
        intervals: ``(n, callback)`` pairs; each callback is called when the steps done are a
            multiple of its ``n``.
        save: called every ``save_every_s`` seconds and once when the loop ends.
        save_every_s: seconds of wall time between saves.
        after_step: called after every step.

    Returns:
        A :class:`LoopResult`.
    """
    if max_steps is None and max_minutes is None:
        raise ValueError("a training loop needs a step or a time budget")
    t0 = time.monotonic()
    last_save = t0
    result = LoopResult(start=start, steps=start)
    while max_steps is None or result.steps < max_steps:
        terms = {k: float(v) for k, v in step_fn(result.steps).items()}
        result.steps += 1
        result.history.append(terms)
        now = time.monotonic()
        if result.steps % log_every == 0:
            recent = result.history[-log_every:]
            means = " ".join(f"{k} {np.mean([h[k] for h in recent]):.4f}" for k in terms)
            speed = result.run_steps / (now - t0)
            log.info("step %d %s (%.3f steps/s)", result.steps, means, speed)
        for n, callback in intervals:
            if result.steps % n == 0:
                callback(result.steps)
        if after_step is not None:  # After the intervals: it may report what they measured.
            after_step(result.steps, terms, now - t0)
        if save is not None and time.monotonic() - last_save > save_every_s:
            save(result.steps)
            last_save = time.monotonic()
        if max_minutes is not None and time.monotonic() - t0 > max_minutes * 60:
            break
    if save is not None:
        save(result.steps)
    result.seconds = time.monotonic() - t0
    return result


def optimizer_step(loss: torch.Tensor, opt: torch.optim.Optimizer) -> float:
    """``zero_grad / backward / step`` on ``loss``; its value."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())


def run_steps(
    loss_fn: Callable[[int], torch.Tensor],
    opt: torch.optim.Optimizer,
    max_steps: int,
    max_minutes: float | None = None,
    every: int = 100,
    on_interval: Callable[[int, float, float], None] | None = None,
    what: str = "loss",
) -> LoopResult:
    """:func:`train_loop` for one loss and one optimizer (the landmark regressor, the driver).

    ``loss_fn(step)`` builds the step's batch and returns its scalar loss (it puts its model in
    training mode itself: the callback may leave it in eval mode); ``on_interval(step, mean loss
    of the interval, seconds so far)`` is called every ``every`` steps. The loss term is named
    ``what`` in the log lines and the result's history.
    """
    t0 = time.monotonic()
    losses: list[float] = []

    def step(k: int) -> dict[str, float]:
        losses.append(optimizer_step(loss_fn(k), opt))
        return {what: losses[-1]}

    def interval(steps: int) -> None:
        assert on_interval is not None
        on_interval(steps, float(np.mean(losses[-every:])), time.monotonic() - t0)

    return train_loop(
        step,
        max_steps=max_steps,
        max_minutes=max_minutes,
        log_every=every,
        intervals=[(every, interval)] if on_interval is not None else [],
    )
