"""Multinomial logistic regression in numpy, for the router's calibration.

A handful of features per route and a few hundred to a few thousand examples:
full-batch gradient descent with an L2 penalty converges in well under a
second, and keeps the build free of scikit-learn. Classes are weighted to equal
total weight so that a pipeline giving 5,000 code prompts and 300 general ones
does not teach the router that everything is code.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..router.calibration import Calibrator, softmax


def fit_calibrator(x: np.ndarray, y: np.ndarray, n_classes: int, features: Sequence[str], *,
                   l2: float = 1e-2, steps: int = 3000, lr: float = 0.5) -> Calibrator:
    """Fit softmax(W · standardise(x) + b) to labels ``y`` (ints in [0, n_classes))."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0  # a constant feature (a route without keywords) carries no information
    z = (x - mean) / scale
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    sample_weight = (len(y) / (n_classes * np.maximum(counts, 1.0)))[y]
    sample_weight /= sample_weight.sum()
    onehot = np.eye(n_classes)[y]
    weights = np.zeros((n_classes, z.shape[1]))
    bias = np.zeros(n_classes)
    # Gradient descent with a momentum term; the problem is convex, so this reaches the optimum.
    velocity_w = np.zeros_like(weights)
    velocity_b = np.zeros_like(bias)
    for _ in range(steps):
        probs = softmax(z @ weights.T + bias)
        err = (probs - onehot) * sample_weight[:, None]
        grad_w = err.T @ z + l2 * weights
        grad_b = err.sum(axis=0)
        velocity_w = 0.9 * velocity_w - lr * grad_w
        velocity_b = 0.9 * velocity_b - lr * grad_b
        weights += velocity_w
        bias += velocity_b
    return Calibrator(tuple(features), mean, scale, weights, bias)


def log_loss(cal: Calibrator, x: np.ndarray, y: np.ndarray) -> float:
    probs = softmax(cal.logits(x))
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, 1.0))))
