"""Quality of a GGUF through llama.cpp: perplexity, KL divergence and top-1 agreement.

The text is cut into windows of `n_ctx` tokens (each window starts with BOS when the
model's tokenizer adds one). Every token after the first of a window is scored from
the logits llama.cpp computed for the token before it, so the figures are what the
runtime would see, quantization kernels included. With a reference (the f16 GGUF)
the same windows run through both models and each position adds
KL(reference || model) and whether both put the same token first.

Always evaluate on text the model was not calibrated on (see `data/heldout.txt`).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BuildError, ModelError, UsageError
from .scoring import LlamaScorer, log_softmax

# Packaged held-out text (prose, code and dialogue) that no calibration and no training ever reads.
HELDOUT_TEXT = Path(__file__).parent / "data" / "heldout.txt"


@dataclass(frozen=True)
class EvalResult:
    """Scores of one model on one text; KL and top-1 are None without a reference."""

    perplexity: float
    kl_divergence: float | None
    top1_agreement: float | None
    tokens: int  # scored positions
    tokens_per_s: float  # tokens the model evaluated per second (batched, reference excluded)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _load(path: Path, n_ctx: int, threads: int) -> LlamaScorer:
    if not path.is_file():
        raise UsageError(f"GGUF file {path} not found", hint="pass the path written by `build quantize` or `build convert`")
    try:
        return LlamaScorer(path, n_ctx=n_ctx, n_threads=threads)
    except BuildError as exc:
        raise ModelError(f"llama.cpp could not load {path}",
                         hint="check it is a complete GGUF (re-run `build convert`/`build quantize`)") from exc


def evaluate_gguf(model: Path | str, *, reference: Path | str | None, text: str, n_ctx: int = 512,
                  threads: int = 1, max_tokens: int | None = None) -> EvalResult:
    """Score `model` on `text`; with `reference`, also KL and top-1 agreement against it."""
    model = Path(model)
    if n_ctx < 8:
        raise UsageError(f"n_ctx {n_ctx} is too small to score anything", hint="use 256 or more")
    with ExitStack() as stack:
        llm = _load(model, n_ctx, threads)
        stack.callback(llm.close)
        ref = None
        if reference is not None:
            ref = _load(Path(reference), n_ctx, threads)
            stack.callback(ref.close)
            if ref.n_vocab != llm.n_vocab:
                raise UsageError(f"{model.name} and {Path(reference).name} have different vocabularies",
                                 hint="compare a model with the f16 GGUF of the same model")
        tokens = llm.tokenize(text, special=False)
        if ref is not None and ref.tokenize(text, special=False) != tokens:
            raise UsageError(f"{model.name} and {Path(reference).name} tokenize the text differently",
                             hint="compare a model with the f16 GGUF of the same model")
        if max_tokens is not None:
            tokens = tokens[:max_tokens]
        prefix = llm.tokenize("", add_bos=True, special=False)  # [BOS] when the model adds one
        step = n_ctx - len(prefix)
        if len(tokens) < 2:
            raise UsageError("the evaluation text is too short (fewer than 2 tokens)",
                             hint="pass a held-out text of a few thousand tokens")
        nll_sum = kl_sum = 0.0
        agree = scored = evaluated = 0
        model_seconds = 0.0
        for start in range(0, len(tokens), step):
            chunk = tokens[start : start + step]
            if len(chunk) < 2:
                break
            seq = prefix + chunk
            t0 = time.perf_counter()
            logits = llm.window_logits(seq)
            model_seconds += time.perf_counter() - t0
            evaluated += len(seq)
            # Position i's logits predict token i+1; the first chunk token has no context.
            first = len(prefix)
            targets = np.array(seq[first + 1 :])
            logp = log_softmax(logits[first : len(seq) - 1].astype(np.float64))
            nll_sum -= float(logp[np.arange(len(targets)), targets].sum())
            if ref is not None:
                ref_logp = log_softmax(ref.window_logits(seq)[first : len(seq) - 1].astype(np.float64))
                kl_sum += float((np.exp(ref_logp) * (ref_logp - logp)).sum())
                agree += int((ref_logp.argmax(axis=-1) == logp.argmax(axis=-1)).sum())
            scored += len(targets)
    return EvalResult(
        perplexity=float(np.exp(nll_sum / scored)),
        kl_divergence=kl_sum / scored if ref is not None else None,
        top1_agreement=agree / scored if ref is not None else None,
        tokens=scored,
        tokens_per_s=evaluated / model_seconds if model_seconds > 0 else 0.0,
    )
