"""The optimisation loop of lipdub's small in-project regressors (mouth landmarks, mouth driver).

One loop, called from each trainer: a step budget and a wall-time budget, Adam-style
``zero_grad / backward / step`` on whatever loss the trainer's ``loss_fn(step)`` returns, a log
line every ``every`` steps and an optional callback there (validation, JSON lines). The trainer
owns its data, model and optimizer; this module owns only the loop. SyncNet's and the generator's
trainers have their own (checkpoints, resume, discriminator steps) and do not use it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

log = logging.getLogger(__name__)


@dataclass
class LoopResult:
    """What :func:`run_steps` did."""

    steps: int  # Optimizer steps taken.
    seconds: float  # Wall time of the loop.
    losses: list[float] = field(default_factory=list)  # The loss of every step, in order.

    def first_loss(self, n: int = 50) -> float | None:
        """Mean loss of the first ``n`` steps (None before any step)."""
        return float(np.mean(self.losses[:n])) if self.losses else None

    def last_loss(self, n: int = 50) -> float | None:
        """Mean loss of the last ``n`` steps (None before any step)."""
        return float(np.mean(self.losses[-n:])) if self.losses else None


#: ``on_interval(step, mean loss of the interval, seconds so far)``.
IntervalFn = Callable[[int, float, float], None]


def run_steps(
    loss_fn: Callable[[int], torch.Tensor],
    opt: torch.optim.Optimizer,
    max_steps: int,
    max_minutes: float | None = None,
    every: int = 100,
    on_interval: IntervalFn | None = None,
    what: str = "loss",
) -> LoopResult:
    """Minimise ``loss_fn(step)`` (step = 0, 1, …) until either budget is spent.

    Arguments:
        loss_fn: builds step ``step``'s batch and returns its scalar loss; it puts its model in
            training mode itself (the callback may leave it in eval mode).
        opt: the optimizer over the model's parameters.
        max_steps: step budget.
        max_minutes: wall-time budget, checked before each step (None = steps only).
        every: steps between log lines and calls of ``on_interval``.
        on_interval: called every ``every`` steps with the step, the interval's mean loss and
            the seconds so far (the trainer's validation and JSON lines).
        what: name of the loss in log lines.

    Returns:
        A :class:`LoopResult` (steps, seconds, every step's loss).
    """
    t0 = time.monotonic()
    result = LoopResult(steps=0, seconds=0.0)
    while result.steps < max_steps:
        if max_minutes is not None and time.monotonic() - t0 > max_minutes * 60:
            break
        loss = loss_fn(result.steps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        result.steps += 1
        result.losses.append(float(loss.detach()))
        if result.steps % every == 0:
            mean = float(np.mean(result.losses[-every:]))
            log.info("step %d %s %.4f", result.steps, what, mean)
            if on_interval is not None:
                on_interval(result.steps, mean, time.monotonic() - t0)
    result.seconds = time.monotonic() - t0
    return result
