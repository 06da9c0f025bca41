"""What a LoRA adapter GGUF is: its rank, alpha, the base it says it was trained on,
and whether its tensors fit a given base (the shape rule llama.cpp applies at load).

Used by ``bundle create`` before anything is packed, so a wrong adapter fails on
the build machine rather than on the laptop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModifierError
from .ggufmeta import ALORA_INVOCATION_KEY, BASE_SHA256_KEY, GGUFInfo, read_gguf_info
from .manifest import SHA256_RE

_RECONVERT = "convert the PEFT adapter with `edge-assistant build convert-lora`"


@dataclass(frozen=True)
class AdapterInfo:
    path: Path
    rank: int                 # the largest rank among its targets (they are usually all equal)
    alpha: float
    targets: tuple[str, ...]  # adapted base weights, e.g. blk.0.attn_q.weight
    base_sha256: str | None   # the binding it carries (edge_assistant.base_sha256), if any
    kind: str = "lora"        # "alora" when it carries an invocation sequence (manifest.MODIFIER_KINDS)


def inspect_adapter(path: Path, base: GGUFInfo, *, label: str | None = None) -> AdapterInfo:
    """Read ``path`` as a LoRA adapter for ``base`` (read with tensors=True); raise
    ModifierError naming ``label`` (default: the path) if it is not one or does not fit."""
    where = label or str(path)
    info = read_gguf_info(path, tensors=True)
    if not info.is_adapter or info.metadata.get("adapter.type") != "lora":
        raise ModifierError(f"{where} is not a LoRA adapter GGUF (general.type={info.metadata.get('general.type')!r})",
                            hint=_RECONVERT)
    if info.architecture != base.architecture:
        raise ModifierError(f"{where} is for architecture {info.architecture!r}, the base is {base.architecture!r}",
                            hint="use an adapter trained on this base")
    base_tensors = base.tensor_map()
    adapter_tensors = info.tensor_map()
    ranks = info.lora_ranks()
    if not ranks:
        raise ModifierError(f"{where} has no *.lora_a tensors", hint=_RECONVERT)
    for name in adapter_tensors:
        if name.endswith(".lora_b") and f"{name[:-len('.lora_b')]}.lora_a" not in adapter_tensors:
            raise ModifierError(f"{where}: {name} has no matching lora_a", hint=_RECONVERT)
    for target, rank in ranks.items():
        a = adapter_tensors[f"{target}.lora_a"]
        b = adapter_tensors.get(f"{target}.lora_b")
        w = base_tensors.get(target)
        if b is None or w is None or len(w.shape) < 2 or len(b.shape) < 2:
            raise ModifierError(f"{where}: {target} has no matching lora_b or base tensor",
                                hint="use an adapter trained on this base")
        if not _fits(target, w.shape, a.shape, b.shape):
            raise ModifierError(f"{where}: {target} shapes a={list(a.shape)} b={list(b.shape)} do not fit "
                                f"the base's {list(w.shape)}", hint="use an adapter trained on this base")
    invocation = info.array_lengths.get(ALORA_INVOCATION_KEY)
    if ALORA_INVOCATION_KEY in info.metadata or invocation == 0:
        raise ModifierError(f"{where} has a malformed {ALORA_INVOCATION_KEY} (it must be a non-empty token list)",
                            hint=_RECONVERT)
    info.check_complete()
    binding = info.metadata.get(BASE_SHA256_KEY)
    if binding is not None and not (isinstance(binding, str) and SHA256_RE.fullmatch(binding)):
        raise ModifierError(f"{where} has a malformed {BASE_SHA256_KEY}", hint=_RECONVERT)
    rank = max(ranks.values())
    alpha = info.metadata.get("adapter.lora.alpha")
    if isinstance(alpha, float) and not (math.isfinite(alpha) and alpha >= 0):
        raise ModifierError(f"{where} has adapter.lora.alpha {alpha}, not a finite number of 0 or more",
                            hint=_RECONVERT)
    # llama.cpp scales by alpha/rank, or by 1 when alpha is absent (0): alpha = rank means the same.
    has_alpha = isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and alpha
    return AdapterInfo(path=Path(path), rank=rank, alpha=float(alpha) if has_alpha else float(rank),
                       targets=tuple(sorted(ranks)), base_sha256=binding,
                       kind="alora" if invocation else "lora")


def _fits(target: str, w: tuple[int, ...], a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """llama.cpp's shape rule (llama-adapter.cpp), in GGUF order, plus the inner dimensions agreeing
    (which llama.cpp leaves to the graph, where a mismatch aborts the process)."""
    if "token_embd" in target:
        # W [n_embd, n_vocab]; A [rank, n_vocab] gathered by token, B [rank, n_embd].
        return w[0] == b[1] and w[1] == a[1] and a[0] == b[0]
    # W [n_in, n_out], A [n_in, rank], B [rank, n_out].
    return w[0] == a[0] and w[1] == b[1] and a[1] == b[0]
