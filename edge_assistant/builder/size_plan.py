"""Per-tensor types to a size budget: measured sensitivity per tensor group, then a knapsack.

Groups are, per decoder block: attention in (q, k, v), attention out (o), MLP in
(gate, up) and MLP out (down); plus the token embeddings (and the output matrix, or
the tied embedding that serves as both). For every group and every candidate type
its tensors can take, the group alone is quantized to that type with ggml's own
kernels (importance-weighted when importance is given), put back into the float
model, and the KL divergence against the float model is measured on calibration
text. Assuming the groups' KL adds up, the plan is the choice of one type per group
that minimises the summed KL within the byte budget: a multiple-choice knapsack,
solved greedily on the lower convex hull of each group's (bytes, KL) points,
starting from every group at its cheapest type and buying the best KL-per-byte
upgrade until the budget is spent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..bundle.ggufmeta import read_gguf_info
from ..errors import UsageError
from . import ggml_quant
from .gguf_index import TensorEntry, tensor_entries

# Candidate types, cheapest first; a group takes those whose block divides its rows and,
# of types with the same bits per weight, only the first that fits (IQ4_NL over Q4_K
# and Q4_0, Q5_K over Q5_0): fewer measurements, no loss. Q4_1 and Q5_1 fill the steps
# between the block-32 types, the only ones rows not 256-wide can take (SmolLM2's 576):
# its tied embedding at Q5_1 instead of Q5_0 cost 1.8 MB and took KL from 0.0325 to 0.0249.
LADDER = ("Q3_K", "IQ4_XS", "IQ4_NL", "Q4_K", "Q4_0", "Q4_1", "Q5_K", "Q5_0", "Q5_1", "Q6_K", "Q8_0")
GROUPS = {"attn_in": ("attn_q", "attn_k", "attn_v"), "attn_out": ("attn_output",),
          "mlp_in": ("ffn_gate", "ffn_up"), "mlp_out": ("ffn_down",)}


@dataclass
class Group:
    name: str  # "blk.3.mlp_in", "token_embd", "output"
    tensors: list[str]  # GGUF names
    modules: list[str]  # HF parameter names, same order
    shapes: list[tuple[int, int]]
    options: dict[str, int] = field(default_factory=dict)  # type -> bytes
    kl: dict[str, float] = field(default_factory=dict)  # type -> KL added alone

    def bytes_for(self, qtype: str) -> int:
        return self.options[qtype]


@dataclass
class SizePlan:
    budget: int  # bytes for the planned tensors
    fixed: int  # bytes of everything else (metadata, norms)
    groups: list[Group]
    chosen: dict[str, str]  # group -> type
    seconds: float = 0.0
    calib_tokens: int = 0

    @property
    def types(self) -> dict[str, str]:
        """GGUF tensor name -> type, for quantizer.quantize_with_plan."""
        return {t: self.chosen[g.name] for g in self.groups for t in g.tensors}

    @property
    def planned_bytes(self) -> int:
        return sum(g.bytes_for(self.chosen[g.name]) for g in self.groups)

    @property
    def predicted_kl(self) -> float:
        return sum(g.kl[self.chosen[g.name]] for g in self.groups)

    def table(self) -> str:
        """Markdown: one row per group with its type, bytes and the KL it adds."""
        lines = [f"Plan: {self.planned_bytes / 1e6:.2f} MB of tensors within {self.budget / 1e6:.2f} MB "
                 f"(+{self.fixed / 1e6:.2f} MB fixed); summed sensitivity {self.predicted_kl:.4f} nats "
                 f"(measured on {self.calib_tokens} calibration tokens)", "",
                 "| group | tensors | type | MB | KL alone | cheaper option (KL) |", "|---|---:|---|---:|---:|---|"]
        for g in self.groups:
            t = self.chosen[g.name]
            order = sorted(g.options, key=g.options.__getitem__)
            below = [o for o in order if g.options[o] < g.options[t]]
            cheaper = f"{below[-1]} ({g.kl[below[-1]]:.4f})" if below else "—"
            lines.append(f"| {g.name} | {len(g.tensors)} | {t} | {g.bytes_for(t) / 1e6:.2f} | {g.kl[t]:.4f} | "
                         f"{cheaper} |")
        counts: dict[str, int] = {}
        for g in self.groups:
            counts[self.chosen[g.name]] = counts.get(self.chosen[g.name], 0) + len(g.tensors)
        lines += ["", "Tensors per type: " + ", ".join(f"{n}×{t}" for t, n in sorted(counts.items()))]
        return "\n".join(lines) + "\n"


def _hf_groups(model: Any, ladder: Sequence[str]) -> list[Group]:
    from .tensor_names import gguf_name

    params = dict(model.named_parameters())
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    groups: list[Group] = []

    def add(name: str, hf_names: list[str]) -> None:
        mapped = [gguf_name(n) for n in hf_names]
        shapes = [tuple(params[n].shape) for n in hf_names]
        g = Group(name, [m[0] for m in mapped if m], hf_names, shapes)  # type: ignore[misc]
        for qtype in ladder:
            if all(ggml_quant.fits(qtype, s[1]) for s in shapes):
                size = sum(ggml_quant.tensor_bytes(qtype, s) for s in shapes)
                if size not in g.options.values():
                    g.options[qtype] = size
        if not g.options:
            raise UsageError(f"no candidate type fits the rows of {name} ({shapes[0][1]} wide)",
                             hint="add Q8_0 or another block-32 type to the candidates")
        groups.append(g)

    add("token_embd", ["model.embed_tokens.weight"])
    if not tied and "lm_head.weight" in params:
        add("output", ["lm_head.weight"])
    for i, _layer in enumerate(model.model.layers):
        prefix = f"model.layers.{i}"
        add(f"blk.{i}.attn_in", [f"{prefix}.self_attn.{p}_proj.weight" for p in ("q", "k", "v")])
        add(f"blk.{i}.attn_out", [f"{prefix}.self_attn.o_proj.weight"])
        add(f"blk.{i}.mlp_in", [f"{prefix}.mlp.{p}_proj.weight" for p in ("gate", "up")])
        add(f"blk.{i}.mlp_out", [f"{prefix}.mlp.down_proj.weight"])
    return groups


def _fake_quantize(w: torch.Tensor, qtype: str, importance: np.ndarray | None) -> torch.Tensor:
    rows = w.detach().to(torch.float16).float().numpy()  # the f16 GGUF's values
    q = ggml_quant.quantize_rows(qtype, rows, importance)
    return torch.from_numpy(ggml_quant.dequantize(qtype, q, rows.shape).astype(np.float32))


def _tail_logits(model: Any, x: torch.Tensor, kwargs: dict[str, Any], first: int) -> torch.Tensor:
    """Logits from the hidden states entering block `first`, through the remaining blocks and the head."""
    from .awq import _run_block

    for layer in model.model.layers[first:]:
        x = _run_block(layer, x, kwargs)
    return model.lm_head(model.model.norm(x))


def measure_sensitivity(model: Any, windows: torch.Tensor, *, importance: Mapping[str, np.ndarray] | None = None,
                        ladder: Sequence[str] = LADDER,
                        progress: Callable[[int, int, str], None] | None = None) -> list[Group]:
    """Every group's KL, alone, at every type it can take; the model is left as it was.

    The float hidden states entering each block are computed once, so a group in
    block i costs a forward of blocks i.. and the head only.
    """
    from .awq import _block_inputs, _run_block

    importance = importance or {}
    model.float().eval()
    params = dict(model.named_parameters())
    groups = _hf_groups(model, ladder)
    with torch.no_grad():
        x, kwargs = _block_inputs(model, windows)
        entering = []
        for layer in model.model.layers:
            entering.append(x)
            x = _run_block(layer, x, kwargs)
        ref = torch.log_softmax(model.lm_head(model.model.norm(x)).float(), dim=-1)

        def kl_from(group: Group) -> float:
            if group.name.startswith("blk."):
                first = int(group.name.split(".")[1])
                logits = _tail_logits(model, entering[first], kwargs, first)
            else:  # the embeddings (tied: also the output matrix) or the output matrix: the whole model
                logits = model(input_ids=windows, use_cache=False).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            return max(0.0, float((ref.exp() * (ref - logp)).sum(-1).mean()))

        for gi, g in enumerate(groups):
            originals = [params[n].data.clone() for n in g.modules]
            try:
                for qtype in g.options:
                    for n, t, orig in zip(g.modules, g.tensors, originals):
                        params[n].data = _fake_quantize(orig, qtype, importance.get(t))
                    g.kl[qtype] = kl_from(g)
            finally:
                for n, orig in zip(g.modules, originals):
                    params[n].data = orig
            if progress is not None:
                progress(gi + 1, len(groups), g.name)
    return groups


def _hull(g: Group) -> list[str]:
    """The group's types on the lower convex hull of (bytes, KL), cheapest first, KL strictly falling."""
    pts = sorted(g.options, key=lambda t: (g.options[t], g.kl[t]))
    keep: list[str] = []
    for t in pts:
        if keep and g.kl[t] >= g.kl[keep[-1]]:
            continue  # more bytes for no less KL
        while len(keep) >= 2:
            a, b = keep[-2], keep[-1]
            # slope a->b must be steeper (more KL saved per byte) than b->t, else b is not on the hull
            s_ab = (g.kl[a] - g.kl[b]) / max(1, g.options[b] - g.options[a])
            s_bt = (g.kl[b] - g.kl[t]) / max(1, g.options[t] - g.options[b])
            if s_ab <= s_bt:
                keep.pop()
            else:
                break
        keep.append(t)
    return keep


def choose_plan(groups: list[Group], budget: int, *, fixed: int = 0, calib_tokens: int = 0) -> SizePlan:
    """One type per group, minimising summed KL within `budget` bytes (greedy over convex hulls)."""
    hulls = {g.name: _hull(g) for g in groups}
    chosen = {g.name: hulls[g.name][0] for g in groups}
    spent = sum(g.options[chosen[g.name]] for g in groups)
    if spent > budget:
        raise UsageError(f"even the smallest types need {(spent + fixed) / 1e6:.1f} MB, over the target "
                         f"{(budget + fixed) / 1e6:.1f} MB", hint="raise --target-size or add smaller candidate types")
    by_name = {g.name: g for g in groups}
    while True:
        best: tuple[float, str, str] | None = None
        for name, hull in hulls.items():
            i = hull.index(chosen[name])
            if i + 1 >= len(hull):
                continue
            g, nxt = by_name[name], hull[i + 1]
            extra = g.options[nxt] - g.options[chosen[name]]
            if spent + extra > budget:
                continue
            gain = (g.kl[chosen[name]] - g.kl[nxt]) / max(1, extra)
            if best is None or gain > best[0]:
                best = (gain, name, nxt)
        if best is None:
            break
        _gain, name, nxt = best
        spent += by_name[name].options[nxt] - by_name[name].options[chosen[name]]
        chosen[name] = nxt
    return SizePlan(budget, fixed, groups, chosen, calib_tokens=calib_tokens)


def fixed_bytes(header: int, tensors: Sequence[TensorEntry], planned: set[str]) -> int:
    """Bytes of the file the plan does not choose: header, metadata and the tensors kept as they are."""
    align = 32
    rest = sum(math.ceil(t.nbytes / align) * align for t in tensors if t.name not in planned)
    return header + rest + align * len(planned)  # each planned tensor may add up to one alignment pad


def plan_to_size(model: Any, windows: torch.Tensor, src: Path, target: Any, *,
                 importance: Mapping[str, np.ndarray] | None = None, ladder: Sequence[str] = LADDER,
                 progress: Callable[[int, int, str], None] | None = None) -> SizePlan:
    """Measure sensitivities on `windows` and choose the types that fit `target` (a SizeTarget)."""
    started = time.perf_counter()
    groups = measure_sensitivity(model, windows, importance=importance, ladder=ladder, progress=progress)
    planned = {t for g in groups for t in g.tensors}
    info = read_gguf_info(src, tensors=True)   # `src`: the f16 GGUF the plan's types apply to
    tensors = tensor_entries(info)
    fixed = fixed_bytes(int(info.data_offset or 0), tensors, planned)
    if target.bytes is not None:
        budget = target.bytes - fixed
    else:
        n_weights = sum(t.n_elements for t in tensors)
        budget = int(float(target.bits_per_weight) * n_weights / 8) - fixed
    plan = choose_plan(groups, budget, fixed=fixed, calib_tokens=int(windows.numel()))
    plan.seconds = time.perf_counter() - started
    return plan
