"""Integrated gradients (Sundararajan et al., 2017) over one or more embedding tensors.

For a scalar model output ``F`` and an input ``x`` with baseline ``x'``, the attribution of input
coordinate ``i`` is ``(x_i - x'_i) * ∫₀¹ ∂F(x' + α (x - x')) / ∂x_i dα``. The attributions sum to
``F(x) - F(x')`` (completeness); how far a numerical integral misses that sum, the *completeness
gap*, says whether enough steps were taken. The integral is taken by Gauss-Legendre quadrature
(Captum's default), which on smooth networks needs far fewer steps than a Riemann sum; the number of
steps is doubled until the gap is under the tolerance (or ``max_steps`` is reached, and the gap is
reported as it is).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class IntegratedGradientsConfig:
    """How attributions are integrated.

    Args:
        steps: quadrature points of the first try.
        max_steps: the most points tried (steps double up to it).
        tolerance: relative completeness gap accepted: ``|Σ attributions - (F(x) - F(x'))|`` at most
            ``tolerance * |F(x) - F(x')|``, or at most ``absolute_tolerance``.
        absolute_tolerance: the gap always accepted (scores that barely move from the baseline).
        batch_size: interpolated inputs per forward pass (memory vs speed).
    """

    steps: int = 16
    max_steps: int = 256
    tolerance: float = 0.02
    absolute_tolerance: float = 1e-4
    batch_size: int = 32

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= self.max_steps:
            raise ValueError(f"steps must be in [1, max_steps={self.max_steps}], got {self.steps}")
        if self.tolerance < 0 or self.absolute_tolerance < 0:
            raise ValueError("tolerances must be non-negative")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")


@dataclasses.dataclass
class Integrated:
    """The outcome of one integration: attributions per input, per position (summed over the
    embedding axis), the scores at both ends and the completeness gap."""

    attributions: list[np.ndarray]
    score: float
    baseline_score: float
    steps: int

    @property
    def total(self) -> float:
        return float(sum(a.sum() for a in self.attributions))

    @property
    def difference(self) -> float:
        return self.score - self.baseline_score

    @property
    def gap(self) -> float:
        return abs(self.total - self.difference)

    @property
    def relative_gap(self) -> float:
        return self.gap / abs(self.difference) if self.difference else float("inf") if self.gap else 0.0

    def completeness(self) -> dict:
        """JSON-able completeness report."""
        return {"sum_of_attributions": self.total, "score_difference": self.difference, "gap": self.gap,
                "relative_gap": self.relative_gap, "steps": self.steps}


def integrate(forward: Callable[[list[tf.Tensor]], tf.Tensor], inputs: Sequence[np.ndarray],
              baselines: Sequence[np.ndarray], config: IntegratedGradientsConfig = IntegratedGradientsConfig()
              ) -> Integrated:
    """Integrated gradients of ``forward`` from ``baselines`` to ``inputs``.

    Args:
        forward: a batch of interpolated inputs (one ``float32 [m, L_j, D]`` tensor per input) ->
            ``float32 [m]`` scores. It must be deterministic (no dropout).
        inputs: the embeddings ``[L_j, D]`` of each input (e.g. query and product tokens).
        baselines: the baseline embeddings, same shapes (a row equal to its input gets attribution 0).
        config: steps, tolerance and batch size.

    Returns:
        An :class:`Integrated` with one ``[L_j]`` attribution vector per input.

    Examples:
        >>> import numpy as np, tensorflow as tf
        >>> f = lambda xs: tf.reduce_sum(xs[0] ** 2, axis=[1, 2])   # F(x) = Σ x²
        >>> result = integrate(f, [np.array([[1.0, 2.0]], np.float32)], [np.zeros((1, 2), np.float32)])
        >>> round(result.total, 4), round(result.difference, 4)
        (5.0, 5.0)
    """
    inputs = [np.asarray(x, np.float32) for x in inputs]
    baselines = [np.asarray(b, np.float32) for b in baselines]
    for x, b in zip(inputs, baselines):
        if x.shape != b.shape:
            raise ValueError(f"input shape {x.shape} differs from its baseline's {b.shape}")
    ends = forward([tf.constant(np.stack([b, x])) for x, b in zip(inputs, baselines)]).numpy()
    baseline_score, score = float(ends[0]), float(ends[1])
    steps = config.steps
    while True:
        gradients = _average_gradients(forward, inputs, baselines, steps, config.batch_size)
        result = Integrated([((x - b) * g).sum(axis=-1).astype(np.float64)
                             for x, b, g in zip(inputs, baselines, gradients)], score, baseline_score, steps)
        good = result.gap <= max(config.tolerance * abs(result.difference), config.absolute_tolerance)
        if good or steps * 2 > config.max_steps:
            return result
        steps *= 2


def _average_gradients(forward, inputs, baselines, steps: int, batch_size: int) -> list[np.ndarray]:
    """``∫₀¹ ∇F(x' + α (x - x')) dα`` per input, by ``steps``-point Gauss-Legendre quadrature."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas, weights = (nodes + 1) / 2, weights / 2  # from [-1, 1] to [0, 1]
    totals = [np.zeros_like(x, np.float64) for x in inputs]
    for start in range(0, steps, batch_size):
        alpha = alphas[start:start + batch_size].astype(np.float32)
        weight = weights[start:start + batch_size]
        batch = [tf.constant(b[None] + alpha[:, None, None] * (x - b)[None]) for x, b in zip(inputs, baselines)]
        with tf.GradientTape() as tape:
            tape.watch(batch)
            total_score = tf.reduce_sum(forward(batch))
        for total, gradient in zip(totals, tape.gradient(total_score, batch)):
            total += np.tensordot(weight, gradient.numpy().astype(np.float64), axes=1)
    return totals
