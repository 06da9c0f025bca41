"""Calibration: a multinomial logistic model from route features to probabilities.

The features are per-route evidence (embedding similarity, keyword score); the
model learns how much each is worth, so its softmax is a probability that can be
checked (the fit report gives its calibration error) and thresholded. Fitting
is in ``edge_assistant.builder.router_fit``; this module only applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import RouterError


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Calibrator:
    features: tuple[str, ...]   # names of the features it reads, e.g. "sim:code", "kw:code"
    mean: np.ndarray            # [F] standardisation, learnt on the training split
    scale: np.ndarray           # [F]
    weights: np.ndarray         # [K, F]
    bias: np.ndarray            # [K]

    def select(self, names: Sequence[str]) -> np.ndarray:
        """Positions of this calibrator's features in a full feature vector named by ``names``."""
        lookup = {name: i for i, name in enumerate(names)}
        missing = [f for f in self.features if f not in lookup]
        if missing:
            raise RouterError(f"router calibration uses unknown features {missing}", hint="rebuild the router")
        return np.array([lookup[f] for f in self.features], dtype=np.int64)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``x``: [F] or [N, F] features in this calibrator's order."""
        return ((x - self.mean) / self.scale) @ self.weights.T + self.bias

    def contributions(self, x: np.ndarray, route: int) -> np.ndarray:
        """What each feature adds to one route's logit (for explanations)."""
        return ((x - self.mean) / self.scale) * self.weights[route]

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "weights": self.weights.tolist(), "bias": self.bias.tolist()}

    @classmethod
    def from_dict(cls, data: Any, n_routes: int) -> "Calibrator":
        try:
            cal = cls(tuple(str(f) for f in data["features"]),
                      np.asarray(data["mean"], dtype=np.float64), np.asarray(data["scale"], dtype=np.float64),
                      np.asarray(data["weights"], dtype=np.float64), np.asarray(data["bias"], dtype=np.float64))
        except (KeyError, TypeError, ValueError) as exc:
            raise RouterError(f"router calibration is malformed ({exc})", hint="rebuild the router") from exc
        n_features = len(cal.features)
        if (cal.mean.shape != (n_features,) or cal.scale.shape != (n_features,)
                or cal.weights.shape != (n_routes, n_features) or cal.bias.shape != (n_routes,)
                or not np.all(np.isfinite(cal.weights)) or np.any(cal.scale <= 0)):
            raise RouterError("router calibration has the wrong shapes or values", hint="rebuild the router")
        return cal
