"""The router: keyword rules plus static-embedding similarity, calibrated, with stickiness.

A router folder is laid out as :mod:`.format` describes, written by
``edge_assistant.builder.router_fit``.

Per message: the features are, for each route, the mean cosine similarity to
its ``k`` nearest training prompts and the (squashed) keyword score; the
calibrator turns them into probabilities over the routes ("none" is the base).
The most probable route wins if it clears the threshold, else the base answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from ..document import loads_json
from ..errors import RouterError
from .calibration import Calibrator, softmax
from .decision import RouteDecision
from .embedding import EMBEDDING_DIR, StaticEmbedding
from .followup import detect as detect_followup
from .format import (DEFAULT_MAX_CHARS, DEFAULT_STICKINESS_BONUS, KEYWORDS_FILE, NONE_ROUTE, PROTOTYPES_FILE,
                     ROUTER_FILE, RouterConfig)
from .keywords import KeywordHit, KeywordScorer, squash

FEATURE_SETS = ("combined", "keyword", "embedding")


def feature_names(routes: tuple[str, ...]) -> list[str]:
    return [f"sim:{r}" for r in routes] + [f"kw:{r}" for r in routes]


def nearest_mean(sims: np.ndarray, slices: list[np.ndarray], k: int) -> np.ndarray:
    """Mean of the ``k`` largest similarities within each route's slice of the last axis.

    ``sims``: [M] or [N, M] similarities to the M prototypes; returns [routes] or
    [N, routes]. The builder calls it with its own rows set to -inf, so a
    training prompt is never its own nearest neighbour.
    """
    out = np.zeros(sims.shape[:-1] + (len(slices),), dtype=np.float64)
    for i, idx in enumerate(slices):
        if len(idx) == 0:
            continue
        block = sims[..., idx]
        kk = min(k, block.shape[-1])
        out[..., i] = np.partition(block, block.shape[-1] - kk, axis=-1)[..., -kk:].mean(axis=-1)
    return out


@dataclass(frozen=True)
class Stickiness:
    bonus: float = DEFAULT_STICKINESS_BONUS   # added to the previous route's logit for a follow-up (log-odds)


class Router:
    def __init__(self, *, routes: tuple[str, ...], threshold: float, calibrator: Calibrator,
                 keywords: KeywordScorer, embedding: StaticEmbedding, prototypes: np.ndarray,
                 prototype_routes: np.ndarray, k: int, stickiness: Stickiness = Stickiness(),
                 max_chars: int = DEFAULT_MAX_CHARS, feature_set: str = "combined") -> None:
        if not routes or routes[0] != NONE_ROUTE:
            raise RouterError("a router's first route must be 'none' (the base)", hint="rebuild the router")
        self.routes = routes
        self.threshold = threshold
        self.calibrator = calibrator
        self.keywords = keywords
        self.embedding = embedding
        self.prototypes = prototypes.astype(np.float32)  # float32 once here: each query is one mat-vec
        self.prototype_routes = prototype_routes
        self._slices = [np.flatnonzero(prototype_routes == i) for i in range(len(routes))]
        self.k = k
        self.stickiness = stickiness
        self.max_chars = max_chars
        self.feature_set = feature_set
        self._select = calibrator.select(feature_names(routes))

    # ---- loading ----------------------------------------------------------

    @classmethod
    def load(cls, router_dir: str | Path, threshold: float | None = None, *,
             feature_set: str = "combined") -> "Router":
        """Load a router folder; ``threshold`` overrides the fitted one (e.g. the manifest's).

        ``feature_set`` picks the calibration: "combined" (the product), or
        "keyword"/"embedding" alone (for the benchmark's comparison).
        """
        router_dir = Path(router_dir)
        config = RouterConfig.load(router_dir)
        try:
            keywords_data = loads_json((router_dir / KEYWORDS_FILE).read_text(encoding="utf-8"))
            prototypes = np.load(router_dir / PROTOTYPES_FILE, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise RouterError(f"cannot read the router in {router_dir} ({exc})",
                              hint="re-download the bundle or rebuild the router") from exc
        routes = config.routes
        calibrators = config.calibrators
        prototype_routes = np.asarray(config.prototype_routes, dtype=np.int64)
        if feature_set not in calibrators:
            raise RouterError(f"router has no '{feature_set}' calibration",
                              hint=f"choose one of: {', '.join(sorted(calibrators))}")
        embedding = StaticEmbedding.load(router_dir / EMBEDDING_DIR)
        if prototypes.ndim != 2 or prototypes.shape != (len(prototype_routes), embedding.dim):
            raise RouterError(f"{PROTOTYPES_FILE} does not match {ROUTER_FILE} or the embedding size",
                              hint="rebuild the router")
        chosen = config.threshold if threshold is None else float(threshold)
        if not 0.0 <= chosen <= 1.0:
            raise RouterError(f"router threshold {chosen} is not between 0 and 1",
                              hint="fix router.threshold in the manifest or rebuild the bundle")
        router = cls(routes=routes, threshold=chosen,
                     calibrator=Calibrator.from_dict(calibrators[feature_set], len(routes)),
                     keywords=KeywordScorer.from_dict(keywords_data), embedding=embedding,
                     prototypes=prototypes, prototype_routes=prototype_routes, k=config.k,
                     stickiness=Stickiness(config.stickiness_bonus), max_chars=config.max_chars,
                     feature_set=feature_set)
        # The first call pays for lazy set-up in the tokenizer and numpy (~10 ms here):
        # pay it at load time, not on the user's first message.
        router.route("warm up the tokenizer: def f(x) = 2 + 2")
        return router

    @property
    def modifiers(self) -> tuple[str, ...]:
        return self.routes[1:]

    # ---- features ---------------------------------------------------------

    def similarities(self, vector: np.ndarray) -> np.ndarray:
        """Per route: mean cosine similarity of the ``k`` nearest training prompts."""
        return nearest_mean(self.prototypes @ vector, self._slices, self.k)

    def features(self, text: str) -> tuple[np.ndarray, list[KeywordHit], bool]:
        """Full feature vector (see ``feature_names``), the keyword hits, and whether any token was known."""
        vector = self.embedding.encode(text)
        known = bool(np.any(vector))
        sims = self.similarities(vector) if known else np.zeros(len(self.routes))
        raw, hits = self.keywords.score(text, self.routes)
        kw = np.array([squash(s) for s in raw], dtype=np.float64)
        return np.concatenate([sims, kw]), hits, known

    # ---- deciding ---------------------------------------------------------

    def route(self, prompt: str, *, previous: str | None = None) -> RouteDecision:
        started = time.perf_counter()
        text = _clean_text(prompt[: self.max_chars] if isinstance(prompt, str) else "")
        if not text.strip():
            return RouteDecision(None, 1.0, "empty message: the base answers", _ms(started))
        x, hits, known = self.features(text)
        if not known and not hits:
            return RouteDecision(None, 1.0, "no known words or keywords to route on: the base answers",
                                 _ms(started))
        logits = self.calibrator.logits(x[self._select])
        sticky_note = ""
        kept = False
        if previous is not None and previous in self.routes[1:]:
            follow = detect_followup(text)
            if follow.is_followup:
                prev = self.routes.index(previous)
                logits = logits.copy()
                logits[prev] += self.stickiness.bonus
                after = int(np.argmax(logits))
                if after == prev:
                    kept = True
                    sticky_note = f"follow-up ({follow.cue}): kept '{previous}' from the previous message"
                else:
                    sticky_note = (f"follow-up ({follow.cue}) of '{previous}', but the evidence for "
                                   f"'{self.routes[after]}' is strong")
        probs = softmax(logits)
        best = int(np.argmax(probs))
        evidence = self._explain(x, hits, probs)
        if best == 0:
            modifier, confidence = None, float(probs[0])
            head = f"base: general request (p={probs[0]:.2f})"
        elif probs[best] < self.threshold and not kept:
            # a kept follow-up continues a decision already made; the threshold is for fresh ones
            modifier, confidence = None, float(probs[0])
            head = (f"base: best route '{self.routes[best]}' p={probs[best]:.2f} is below the threshold "
                    f"{self.threshold:.2f}")
        else:
            modifier, confidence = self.routes[best], float(probs[best])
            head = f"{modifier} p={probs[best]:.2f}"
        parts = [head] + ([sticky_note] if sticky_note else []) + [evidence]
        return RouteDecision(modifier, round(confidence, 4), "; ".join(parts), _ms(started))

    def _explain(self, x: np.ndarray, hits: list[KeywordHit], probs: np.ndarray) -> str:
        n = len(self.routes)
        ranked = np.argsort(-probs)[: min(3, n)]
        sims = ", ".join(f"{self.routes[i]} {x[i]:.2f}" for i in ranked)
        text = f"similarity to examples: {sims}"
        if self.feature_set == "keyword":
            text = "embedding not used"
        shown = [h for h in hits if h.route == self.routes[int(ranked[0])]] or hits
        if shown and self.feature_set != "embedding":
            words = ", ".join(f"'{h.label}' ({h.route} {h.weight:+g})" for h in shown[:5])
            text += f"; keywords: {words}"
        elif self.feature_set != "embedding":
            text += "; no keywords"
        return text


def _clean_text(text: str) -> str:
    """Lone surrogates (from broken pastes or JSON escapes) cannot cross into the Rust tokenizer."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 4)
