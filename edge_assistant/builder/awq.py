"""Activation-aware weight scaling (AWQ) for Llama-architecture models, before GGUF.

llama.cpp has no AWQ of its own, so the activation-aware part happens here, in the
float model: channels that carry large activations are scaled up in the weights
(and down in whatever produces those activations), so the block quantizer spends
its few levels where the output error is largest. The float model stays
equivalent; only the quantized one changes.

Per decoder block, four scale groups, each folded into the op before it:

    input_layernorm          -> q_proj, k_proj, v_proj   (inspect: self_attn output)
    v_proj (output rows)     -> o_proj                    (inspect: o_proj output)
    post_attention_layernorm -> gate_proj, up_proj        (inspect: mlp output)
    up_proj (output rows)    -> down_proj                 (inspect: down_proj output)

For each group the scales are s = mean|x|^alpha (normalised), alpha on a grid of
`n_grid` points in [0, 1); alpha = 0 is plain quantization, so the chosen scales
never do worse than no scaling on the calibration tokens. The error is measured
under simulated quantization that rounds like ggml (see `quantsim`). Optionally
each weight block is then clipped to the range that minimises its own output error.

With grouped-query attention several query heads read one value head, so the
v -> o scales are searched per value channel and repeated for every query head
that reads it (the original AWQ skips v -> o whenever the shapes differ).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..durable import atomic_folder
from ..errors import BuildError, UsageError
from .importance import Importance, chat_calibration_texts, observe_block, observe_output
from .quantsim import FILE_TYPES, FORMATS, fake_quantize, tensor_type

# The calibration windows: tokens per window and tokens in all (the first of the text).
CALIB_SEQ_LEN, CALIB_TOKENS = 256, 1024
# Packaged calibration text for builds without phase 1 data (never used for evaluation).
CALIBRATION_TEXT = Path(__file__).parent / "data" / "calibration.txt"
# Shrink factors tried for weight clipping (1.0 = no clipping).
CLIP_RATIOS = tuple(1.0 - 0.05 * i for i in range(10))


@dataclass
class GroupResult:
    """One scale group of one block: the chosen alpha and the error it buys."""

    layer: int
    group: str  # "attn_in", "attn_out", "mlp_in", "mlp_out"
    alpha: float
    loss_plain: float  # output MSE of plain quantization (alpha = 0)
    loss_scaled: float  # output MSE with the chosen scales


@dataclass
class AwqReport:
    """What apply_awq did and how long it took."""

    qtype: str
    n_layers: int
    calib_tokens: int  # tokens the statistics and the search used
    n_grid: int
    clip: bool
    seconds: float = 0.0
    seconds_per_block: list[float] = field(default_factory=list)
    groups: list[GroupResult] = field(default_factory=list)
    clipped_fraction: float = 0.0  # fraction of weight blocks whose range was shrunk

    def mean_error_ratio(self) -> float:
        """Mean over groups of loss_scaled / loss_plain (1.0 = AWQ bought nothing)."""
        ratios = [g.loss_scaled / g.loss_plain for g in self.groups if g.loss_plain > 0]
        return sum(ratios) / len(ratios) if ratios else 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the inputs of block 0 are captured."""


def _layers(model: Any) -> Any:
    try:
        return model.model.layers
    except AttributeError as exc:
        raise UsageError(
            f"{type(model).__name__} is not a Llama-style causal LM (no model.layers)",
            hint="AWQ supports LlamaForCausalLM-shaped models; convert without --awq",
        ) from exc


def _calibration_ids(tokenizer: Any, texts: Sequence[str], seq_len: int, n_tokens: int) -> torch.Tensor:
    """Token windows of `seq_len`, cut from the texts joined end to end."""
    eos = tokenizer.eos_token or ""
    joined = eos.join(t.strip() for t in texts if t.strip())
    ids = tokenizer(joined, add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    n_windows = min(len(ids) // seq_len, max(1, n_tokens // seq_len))
    if n_windows < 1:
        raise UsageError(
            f"the calibration text has {len(ids)} tokens, fewer than one window of {seq_len}",
            hint="give a longer calibration text (a few thousand tokens of varied prose, code and dialogue)",
        )
    return ids[: n_windows * seq_len].reshape(n_windows, seq_len)


def _block_inputs(model: Any, ids: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
    """The hidden states and keyword arguments block 0 receives for `ids`."""
    captured: dict[str, Any] = {}

    def grab(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        captured["x"] = args[0] if args else kwargs.pop("hidden_states")
        kwargs.pop("hidden_states", None)
        captured["kwargs"] = kwargs
        raise _Stop

    handle = _layers(model)[0].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        model(input_ids=ids, use_cache=False)
    except _Stop:
        pass
    finally:
        handle.remove()
    kwargs = {k: v for k, v in captured["kwargs"].items() if k not in ("past_key_values", "past_key_value", "use_cache")}
    return captured["x"], kwargs


def _run_block(layer: Any, x: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor:
    out = layer(x, **kwargs)
    return out[0] if isinstance(out, tuple) else out


def _capture_inputs(layer: Any, x: torch.Tensor, kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Inputs of the first linear of each scale group during one float forward of the block."""
    names = {
        "attn_in": layer.self_attn.q_proj,
        "attn_out": layer.self_attn.o_proj,
        "mlp_in": layer.mlp.gate_proj,
        "mlp_out": layer.mlp.down_proj,
    }
    feats: dict[str, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(lambda _m, args, _o, key=key: feats.__setitem__(key, args[0].detach()))
        for key, module in names.items()
    ]
    try:
        _run_block(layer, x, kwargs)
    finally:
        for h in handles:
            h.remove()
    return feats


def _scales(act_mean: torch.Tensor, alpha: float) -> torch.Tensor:
    s = act_mean.clamp(min=1e-4).pow(alpha)
    # Normalise so the scales are centred on 1 (geometric mean of max and min):
    # keeps the f16 copy of the scaled weights far from overflow and underflow.
    s = s / (s.max() * s.min()).sqrt()
    return s


def _search(
    act_mean: torch.Tensor,
    linears: Sequence[torch.nn.Linear],
    expand: Callable[[torch.Tensor], torch.Tensor],
    forward: Callable[[], torch.Tensor],
    reference: torch.Tensor,
    qtype: str,
    n_grid: int,
) -> tuple[torch.Tensor, float, float, float]:
    """Grid-search alpha; returns (scales, alpha, loss at alpha=0, best loss). Weights are restored."""
    originals = [lin.weight.data.clone() for lin in linears]
    best = (torch.ones_like(act_mean), 0.0, float("inf"))
    loss_plain = float("inf")
    try:
        for i in range(n_grid):
            alpha = i / n_grid
            s = _scales(act_mean, alpha) if alpha > 0 else torch.ones_like(act_mean)
            s_in = expand(s)
            for lin, w in zip(linears, originals):
                ttype = tensor_type(qtype, w.shape[1])
                lin.weight.data = (fake_quantize(w * s_in, ttype) / s_in).to(w.dtype)
            loss = float((forward() - reference).float().pow(2).mean())
            if i == 0:
                loss_plain = loss
            if loss < best[2]:
                best = (s, alpha, loss)
    finally:
        for lin, w in zip(linears, originals):
            lin.weight.data = w
    return best[0], best[1], loss_plain, best[2]


def _clip(linear: torch.nn.Linear, x: torch.Tensor, qtype: str, max_tokens: int = 256) -> tuple[int, int]:
    """Shrink each (row, block) range to the ratio that minimises that block's output error.

    Returns (blocks clipped, blocks total). `x` is the linear's input, already scaled.
    """
    w = linear.weight.data.float()
    out_f, in_f = w.shape
    ttype = tensor_type(qtype, in_f)
    block = FORMATS[ttype].block
    n_blocks = in_f // block
    xs = x.reshape(-1, in_f).float()
    if xs.shape[0] > max_tokens:  # evenly spaced tokens: enough to rank a few ratios
        xs = xs[torch.linspace(0, xs.shape[0] - 1, max_tokens).long()]
    xb = xs.reshape(-1, n_blocks, block)
    wb = w.reshape(out_f, n_blocks, block)
    lo = wb.amin(dim=-1, keepdim=True)
    hi = wb.amax(dim=-1, keepdim=True)
    amax = torch.maximum(hi.abs(), lo.abs())
    best_err = torch.full((out_f, n_blocks), float("inf"))
    best_w = wb.clone()
    affine = FORMATS[ttype].affine
    for ratio in CLIP_RATIOS:
        if affine:
            # Affine types store the block minimum: shrink each end towards zero on its own.
            cw = torch.minimum(torch.maximum(wb, torch.where(lo < 0, lo * ratio, lo)),
                               torch.where(hi > 0, hi * ratio, hi))
        else:
            cw = torch.maximum(torch.minimum(wb, amax * ratio), -amax * ratio)
        q = fake_quantize(cw.reshape(out_f, in_f), ttype).reshape(out_f, n_blocks, block)
        diff = q - wb
        err = torch.einsum("ngk,ogk->nog", xb, diff).pow(2).mean(dim=0)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best_w = torch.where(better.unsqueeze(-1), cw, best_w)
    changed = int((best_w != wb).any(dim=-1).sum())
    linear.weight.data = best_w.reshape(out_f, in_f).to(linear.weight.dtype)
    return changed, out_f * n_blocks


def _scale_block(layer: Any, kwargs: dict[str, Any], feats: dict[str, torch.Tensor], qtype: str,
                 n_grid: int, index: int) -> list[GroupResult]:
    attn, mlp = layer.self_attn, layer.mlp
    results: list[GroupResult] = []
    mean_abs = {k: v.reshape(-1, v.shape[-1]).abs().float().mean(dim=0) for k, v in feats.items()}
    identity: Callable[[torch.Tensor], torch.Tensor] = lambda s: s  # noqa: E731

    with torch.no_grad():
        # 1. input_layernorm -> q, k, v; judged on the attention output.
        x = feats["attn_in"]
        attn_call = lambda: attn(hidden_states=x, **_attn_kwargs(kwargs))[0]  # noqa: E731
        ref = attn_call()
        s, alpha, plain, best = _search(mean_abs["attn_in"], [attn.q_proj, attn.k_proj, attn.v_proj],
                                        identity, attn_call, ref, qtype, n_grid)
        layer.input_layernorm.weight.data /= s.to(layer.input_layernorm.weight.dtype)
        for lin in (attn.q_proj, attn.k_proj, attn.v_proj):
            lin.weight.data *= s.to(lin.weight.dtype)
        feats["attn_in"] = x / s
        results.append(GroupResult(index, "attn_in", alpha, plain, best))

        # 2. v_proj rows -> o_proj columns; one scale per value channel, repeated per query head.
        v_out = attn.v_proj.weight.shape[0]
        o_in = attn.o_proj.weight.shape[1]
        head_dim = getattr(attn, "head_dim", None) or o_in // layer.self_attn.config.num_attention_heads
        if o_in % v_out == 0 and v_out % head_dim == 0:
            n_kv, n_rep = v_out // head_dim, o_in // v_out
            expand = lambda s_v: s_v.reshape(n_kv, 1, head_dim).expand(n_kv, n_rep, head_dim).reshape(o_in)  # noqa: E731
            per_v = mean_abs["attn_out"].reshape(n_kv, n_rep, head_dim).mean(dim=1).reshape(v_out)
            xo = feats["attn_out"]
            o_call = lambda: attn.o_proj(xo)  # noqa: E731
            s_v, alpha, plain, best = _search(per_v, [attn.o_proj], expand, o_call, o_call(), qtype, n_grid)
            s_o = expand(s_v)
            attn.v_proj.weight.data /= s_v.to(attn.v_proj.weight.dtype).unsqueeze(1)
            if attn.v_proj.bias is not None:
                attn.v_proj.bias.data /= s_v.to(attn.v_proj.bias.dtype)
            attn.o_proj.weight.data *= s_o.to(attn.o_proj.weight.dtype)
            feats["attn_out"] = xo / s_o
            results.append(GroupResult(index, "attn_out", alpha, plain, best))

        # 3. post_attention_layernorm -> gate, up; judged on the MLP output.
        xm = feats["mlp_in"]
        mlp_call = lambda: mlp(xm)  # noqa: E731
        s, alpha, plain, best = _search(mean_abs["mlp_in"], [mlp.gate_proj, mlp.up_proj],
                                        identity, mlp_call, mlp_call(), qtype, n_grid)
        layer.post_attention_layernorm.weight.data /= s.to(layer.post_attention_layernorm.weight.dtype)
        for lin in (mlp.gate_proj, mlp.up_proj):
            lin.weight.data *= s.to(lin.weight.dtype)
        feats["mlp_in"] = xm / s
        results.append(GroupResult(index, "mlp_in", alpha, plain, best))

        # 4. up_proj rows -> down_proj columns (act(gate) * up is linear in up).
        xd = feats["mlp_out"]
        down_call = lambda: mlp.down_proj(xd)  # noqa: E731
        s, alpha, plain, best = _search(mean_abs["mlp_out"], [mlp.down_proj],
                                        identity, down_call, down_call(), qtype, n_grid)
        mlp.up_proj.weight.data /= s.to(mlp.up_proj.weight.dtype).unsqueeze(1)
        if mlp.up_proj.bias is not None:
            mlp.up_proj.bias.data /= s.to(mlp.up_proj.bias.dtype)
        mlp.down_proj.weight.data *= s.to(mlp.down_proj.weight.dtype)
        feats["mlp_out"] = xd / s
        results.append(GroupResult(index, "mlp_out", alpha, plain, best))
    return results


def _attn_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    # The attention module takes the block's rotary embeddings and mask; the rest
    # (position ids, cache positions) it accepts and ignores without a cache.
    return {k: v for k, v in kwargs.items() if k in ("position_embeddings", "attention_mask", "cache_position", "position_ids")}


def _awq_type(qtype: str) -> str:
    """The file type AWQ simulates for `qtype`: itself, or for IQ/ternary mixes the nearest legacy/k shape."""
    key = qtype.upper()
    if key in FILE_TYPES:
        return key
    if key.startswith("IQ4"):
        return "Q4_0"
    if key.startswith("IQ3"):
        return "Q3_K_M"
    if key.startswith(("IQ2", "IQ1", "TQ")) or key == "Q2_K_S":
        return "Q2_K"
    return key


def apply_awq(
    model: Any,
    tokenizer: Any,
    calib_texts: Sequence[str] | str,
    *,
    qtype: str = "Q4_0",
    n_grid: int = 20,
    clip: bool = True,
    progress: Callable[[int, int, float], None] | None = None,
    seq_len: int = CALIB_SEQ_LEN,
    search_tokens: int = CALIB_TOKENS,
    importance: Importance | None = None,
    chat: bool = True,
) -> AwqReport:
    """Scale (and optionally clip) `model`'s weights in place for `qtype` quantization.

    `model` is a transformers LlamaForCausalLM (or the same shape); it is moved to
    float32 in place. `calib_texts` must never be the text the result is evaluated
    on; the first `search_tokens` of it (in windows of `seq_len`) give both the
    activation statistics and the error the search minimises. `progress(block,
    n_blocks, seconds)` is called after each block. With `clip=False` the float
    model computes the same function as before.

    With `chat` (the default) the texts go through the tokenizer's chat template
    first, as the model is used. When `importance` is given, the same pass adds
    every block linear's input and the output matrix's (as the final scaled,
    clipped model computes them) to it: the importance statistics cost no second pass.
    """
    tensor_type(_awq_type(qtype), 256)  # validate the type name before any work
    qtype = _awq_type(qtype)
    if n_grid < 1:
        raise UsageError("n_grid must be at least 1", hint="use the default of 20")
    if isinstance(calib_texts, str):
        calib_texts = [calib_texts]
    start = time.perf_counter()
    model.float()
    model.eval()
    layers = _layers(model)
    if chat:
        calib_texts = chat_calibration_texts(tokenizer, calib_texts)
    ids = _calibration_ids(tokenizer, calib_texts, seq_len, search_tokens)
    report = AwqReport(qtype=qtype.upper(), n_layers=len(layers), calib_tokens=int(ids.numel()),
                       n_grid=n_grid, clip=clip)
    clipped = total = 0
    with torch.no_grad():
        x, kwargs = _block_inputs(model, ids)
        for index, layer in enumerate(layers):
            t0 = time.perf_counter()
            feats = _capture_inputs(layer, x, kwargs)
            report.groups.extend(_scale_block(layer, kwargs, feats, qtype, n_grid, index))
            if clip:
                attn, mlp = layer.self_attn, layer.mlp
                # q and k are left unclipped: their error is squashed by the softmax
                # in ways a per-block output error does not see (as in the AWQ paper's code).
                for lin, key in ((attn.v_proj, "attn_in"), (attn.o_proj, "attn_out"), (mlp.gate_proj, "mlp_in"),
                                 (mlp.up_proj, "mlp_in"), (mlp.down_proj, "mlp_out")):
                    c, t = _clip(lin, feats[key], qtype)
                    clipped, total = clipped + c, total + t
            # The next block sees this block's new weights; the same forward feeds the importance.
            if importance is not None:
                x = observe_block(importance, layer, index, lambda: _run_block(layer, x, kwargs))  # noqa: B023
            else:
                x = _run_block(layer, x, kwargs)
            seconds = time.perf_counter() - t0
            report.seconds_per_block.append(seconds)
            if progress is not None:
                progress(index, len(layers), seconds)
        if importance is not None:
            observe_output(importance, model, x)
    report.clipped_fraction = clipped / total if total else 0.0
    report.seconds = time.perf_counter() - start
    return report


def awq_hf_dir(hf_dir: Path | str, calib_file: Path | str, qtype: str, out_dir: Path | str, *,
               n_grid: int = 20, clip: bool = True,
               progress: Callable[[int, int, float], None] | None = None,
               importance: Importance | None = None) -> Path:
    """Load an HF model folder, apply AWQ for `qtype`, write the scaled model to `out_dir`.

    The folder is written next to `out_dir` and renamed into place only when
    complete; `awq.json` inside it records the report. `importance`, when given,
    is filled in the same calibration pass (see `apply_awq`).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf_dir, calib_file, out_dir = Path(hf_dir), Path(calib_file), Path(out_dir)
    if not (hf_dir / "config.json").is_file():
        raise UsageError(f"{hf_dir} is not a Hugging Face model folder (no config.json)",
                         hint="pass the folder written by save_pretrained or `build convert`'s input")
    if not calib_file.is_file():
        raise UsageError(f"calibration text {calib_file} not found",
                         hint="pass --calib with a text file (the builder ships data/calibration.txt)")
    text = calib_file.read_text(encoding="utf-8")
    try:
        model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    except (OSError, ValueError) as exc:
        raise BuildError(f"cannot load the model in {hf_dir}: {exc}",
                         hint="check the folder holds a complete transformers model") from exc
    report = apply_awq(model, tokenizer, [text], qtype=qtype, n_grid=n_grid, clip=clip, progress=progress,
                       importance=importance)
    with atomic_folder(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "awq.json").write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")
    return out_dir
