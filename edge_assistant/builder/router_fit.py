"""Fit a router from each modifier's training prompts plus general prompts for "none".

Entry point for the build pipeline::

    from edge_assistant.builder.router_fit import fit_router
    router_dir = fit_router({"code": [...], "reasoning": [...], "automation": [...], "none": [...]},
                            bundle_dir / "router", keyword_rules=recipe_rules_or_None)
    # then record router_dir in the manifest:
    # RouterEntry(dir="router", threshold=RouterConfig.load(router_dir).threshold,
    #                                                      files=<sha256 of every file under router_dir>)

Steps: embed every prompt with the static embedding (distilled once, cached);
split each route's prompts into train/validation (stratified, seeded); compute
features (per route: mean similarity to the k nearest *other* training prompts,
and the keyword score); fit a balanced multinomial logistic calibration for the
combined features and for each family alone; choose the threshold on the
validation split; refit on everything; write the folder atomically with
``fit_report.json`` (accuracy, expected calibration error, confusion).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..bundle.manifest import validate_modifier_name
from ..durable import atomic_folder
from ..errors import ManifestError, RecipeError
from ..router.calibration import softmax
from ..router.default_keywords import DEFAULT_KEYWORD_RULES
from ..router.embedding import EMBEDDING_DIR, StaticEmbedding
from ..router.keywords import KeywordRule, KeywordScorer, rules_from_recipe, squash
from ..router.format import DEFAULT_MAX_CHARS, FIT_REPORT_FILE, KEYWORDS_FILE, NONE_ROUTE, PROTOTYPES_FILE, RouterConfig
from ..router.router import FEATURE_SETS, feature_names, nearest_mean
from . import router_embedding
from .logistic import fit_calibrator, log_loss

K_NEAREST = 3
VALIDATION_FRACTION = 0.2
MIN_EXAMPLES = 8               # per route, after removing duplicates
MAX_PROTOTYPES = 3000          # per route: bounds the runtime's mat-vec (and the bundle) for big recipes
THRESHOLD_GRID = np.round(np.arange(0.30, 0.901, 0.01), 2)
ECE_BINS = 10


def _clean(examples: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    if NONE_ROUTE not in examples:
        raise RecipeError("router examples have no 'none' prompts",
                          hint="add general prompts under 'none': the router learns the base's share from them")
    cleaned: dict[str, list[str]] = {}
    for route, prompts in examples.items():
        if route != NONE_ROUTE:
            try:
                validate_modifier_name(route)
            except ManifestError as exc:
                raise RecipeError(f"router route {route!r} is not a valid modifier name",
                                  hint=exc.hint or "use lowercase letters and digits") from exc
        if isinstance(prompts, str):
            raise RecipeError(f"router examples for '{route}' must be a list of prompts, not one string",
                              hint="pass a list of strings")
        seen: set[str] = set()
        unique = []
        for p in prompts:
            if not isinstance(p, str):
                raise RecipeError(f"router example for '{route}' is not a string: {p!r}", hint="pass strings")
            key = " ".join(p.split()).lower()
            if key and key not in seen:
                seen.add(key)
                unique.append(p.strip())
        if len(unique) < MIN_EXAMPLES:
            raise RecipeError(f"router route '{route}' has {len(unique)} distinct prompts; at least "
                              f"{MIN_EXAMPLES} are needed", hint="add more training prompts for it")
        cleaned[route] = unique
    owner: dict[str, str] = {}
    for route, prompts in cleaned.items():
        for p in prompts:
            key = " ".join(p.split()).lower()
            if owner.setdefault(key, route) != route:
                raise RecipeError(f"the prompt {p[:60]!r} is labelled both '{owner[key]}' and '{route}'",
                                  hint="give each training prompt one route")
    return cleaned


def _split(labels: np.ndarray, n_routes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    train, val = [], []
    for r in range(n_routes):
        idx = rng.permutation(np.flatnonzero(labels == r))
        n_val = max(2, int(round(len(idx) * VALIDATION_FRACTION)))
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train)), np.sort(np.array(val))


def _similarity_features(vectors: np.ndarray, labels: np.ndarray, proto_idx: np.ndarray,
                         query_idx: np.ndarray, n_routes: int) -> np.ndarray:
    """Per-route k-nearest similarity of each query to the prototypes, never counting itself."""
    sims = vectors[query_idx] @ vectors[proto_idx].T
    same = query_idx[:, None] == proto_idx[None, :]
    sims[same] = -np.inf
    # a query with no known tokens is a zero vector: its similarities are all 0, as at runtime
    slices = [np.flatnonzero(labels[proto_idx] == r) for r in range(n_routes)]
    return nearest_mean(sims, slices, K_NEAREST)


def _decide(probs: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Runtime rule: the best route if it clears the threshold, else the base (route 0)."""
    best = probs.argmax(axis=1)
    routed = (best != 0) & (probs[np.arange(len(best)), best] >= threshold)
    pred = np.where(routed, best, 0)
    conf = probs[np.arange(len(pred)), pred]
    return pred, conf


def _ece(conf: np.ndarray, correct: np.ndarray) -> float:
    edges = np.linspace(0.0, 1.0, ECE_BINS + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if mask.any():
            total += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(total)


def _confusion(y: np.ndarray, pred: np.ndarray, routes: tuple[str, ...]) -> dict[str, Any]:
    matrix = np.zeros((len(routes), len(routes)), dtype=int)
    for t, p in zip(y, pred):
        matrix[t, p] += 1
    return {"rows_true_cols_predicted": list(routes), "matrix": matrix.tolist()}


def _choose_threshold(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The threshold with the best validation accuracy; the middle of the best plateau."""
    accs = np.array([(_decide(probs, t)[0] == y).mean() for t in THRESHOLD_GRID])
    best = np.flatnonzero(accs >= accs.max() - 1e-12)
    chosen = float(THRESHOLD_GRID[best[len(best) // 2]])
    return chosen, float(accs.max())


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def fit_router(examples: Mapping[str, Sequence[str]], out_dir: Path, *,
               keyword_rules: Mapping[str, Sequence[Any]] | None = None,
               embedding_source: Path | None = None, seed: int = 0,
               embedding_cache: Path | None = None, embedding_dims: int = 0) -> Path:
    """Fit a router and write it to ``out_dir`` (replaced atomically); returns ``out_dir``.

    ``examples``: route name -> training prompts; must include "none" (general
    prompts the base should answer). ``keyword_rules``: route -> rules as
    (pattern, weight[, note]) tuples, {pattern, weight, note} mappings or
    KeywordRule; None uses the default table for the routes it knows.
    ``embedding_source``: a sentence-transformers folder to distil, or an
    already distilled embedding folder; None distils the offline
    all-MiniLM-L6-v2. ``embedding_cache``: where distillations are cached
    (default: the user cache dir).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    cleaned = _clean(examples)
    routes = (NONE_ROUTE,) + tuple(r for r in cleaned if r != NONE_ROUTE)
    if keyword_rules is None:
        rules: dict[str, list[KeywordRule]] = {r: list(DEFAULT_KEYWORD_RULES.get(r, ())) for r in routes}
    else:
        rules = rules_from_recipe(keyword_rules)
        unknown = sorted(set(rules) - set(routes))
        if unknown:
            raise RecipeError(f"keyword rules name routes without examples: {', '.join(unknown)}",
                              hint="add training prompts for them or remove their rules")
    scorer = KeywordScorer(rules)

    embedding_dir = router_embedding.prepare(embedding_source, embedding_cache,
                                             pca_dims=embedding_dims or router_embedding.PCA_DIMS)
    embedding = StaticEmbedding.load(embedding_dir)
    texts = [p for r in routes for p in cleaned[r]]
    labels = np.array([i for i, r in enumerate(routes) for _ in cleaned[r]], dtype=np.int64)
    vectors = embedding.encode_many([t[:DEFAULT_MAX_CHARS] for t in texts])
    kw = np.array([[squash(s) for s in scorer.score(t[:DEFAULT_MAX_CHARS], routes)[0]] for t in texts])
    names = feature_names(routes)
    n = len(routes)
    family = {"combined": names, "keyword": [f for f in names if f.startswith("kw:")],
              "embedding": [f for f in names if f.startswith("sim:")]}

    rng = np.random.default_rng(seed)
    train, val = _split(labels, n, rng)
    x_train = np.concatenate([_similarity_features(vectors, labels, train, train, n), kw[train]], axis=1)
    x_val = np.concatenate([_similarity_features(vectors, labels, train, val, n), kw[val]], axis=1)

    def columns(cols: list[str]) -> list[int]:
        return [names.index(c) for c in cols]

    validation: dict[str, Any] = {}
    threshold = 0.5
    for feature_set in FEATURE_SETS:
        cols = columns(family[feature_set])
        cal = fit_calibrator(x_train[:, cols], labels[train], n, family[feature_set])
        probs = softmax(cal.logits(x_val[:, cols]))
        if feature_set == "combined":
            threshold, _ = _choose_threshold(probs, labels[val])
        pred, conf = _decide(probs, threshold)
        correct = pred == labels[val]
        validation[feature_set] = {
            "accuracy": round(float(correct.mean()), 4),
            "expected_calibration_error": round(_ece(conf, correct), 4),
            "log_loss": round(log_loss(cal, x_val[:, cols], labels[val]), 4),
            "confusion": _confusion(labels[val], pred, routes),
        }

    # Final model: every prompt is a prototype (capped per route) and a training example.
    keep = []
    for r in range(n):
        idx = np.flatnonzero(labels == r)
        keep.extend(idx if len(idx) <= MAX_PROTOTYPES else np.sort(rng.choice(idx, MAX_PROTOTYPES, replace=False)))
    protos = np.array(keep, dtype=np.int64)
    everyone = np.arange(len(texts))
    x_all = np.concatenate([_similarity_features(vectors, labels, protos, everyone, n), kw], axis=1)
    calibrators = {fs: fit_calibrator(x_all[:, columns(family[fs])], labels, n, family[fs]).to_dict()
                   for fs in FEATURE_SETS}

    config = RouterConfig(routes=routes, threshold=threshold, k=K_NEAREST, calibrators=calibrators,
                          prototype_routes=tuple(int(i) for i in labels[protos]), max_chars=DEFAULT_MAX_CHARS)
    report = {
        "routes": list(routes),
        "examples": {r: len(cleaned[r]) for r in routes},
        "train_size": int(len(train)),
        "validation_size": int(len(val)),
        "threshold": threshold,
        "validation": validation,
        "seed": seed,
        "embedding": {k: v for k, v in embedding.meta.items() if k != "unk_id"},
        "fit_seconds": round(time.perf_counter() - started, 2),
    }

    with atomic_folder(out_dir) as tmp:
        shutil.copytree(embedding_dir, tmp / EMBEDDING_DIR)
        with open(tmp / PROTOTYPES_FILE, "wb") as f:
            np.save(f, vectors[protos].astype(np.float16), allow_pickle=False)
        _write_json(tmp / KEYWORDS_FILE, scorer.to_dict())
        config.save(tmp)
        _write_json(tmp / FIT_REPORT_FILE, report)
    return out_dir
