"""PEFT LoRA adapter (safetensors) -> GGUF adapter that llama.cpp applies to its base.

llama.cpp computes W x + scale * alpha / r * B (A x) with the adapter's
``lora_a`` ([r, in]) and ``lora_b`` ([out, r]) stored under the base tensor's
GGUF name. Because q/k rows were reordered for llama.cpp's rope when the base
was converted, the B matrices of q and k get the same reordering (A is on the
input side and stays). When the base is a GGUF, the adapter records that file's
sha256, which the runtime checks before applying it. An activated LoRA (peft's
``alora_invocation_tokens``) keeps its invocation sequence as llama.cpp's
``adapter.alora.invocation_tokens`` (uint32 array). Tensors are written as float16,
as llama.cpp's own converter does: half the size of float32, and a trained adapter's values
are far inside its range (one that is not is refused, not written as inf).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from ..bundle.ggufmeta import ALORA_INVOCATION_KEY, BASE_SHA256_KEY, read_gguf_info
from ..durable import atomic_file
from ..errors import ConversionError
from ..hashing import sha256_file
from .float16 import FLOAT16_MAX, to_float16
from .gguf_index import read_tensor_index
from .hparams import llama_hparams, read_config
from .rope_layout import interleave_rope_rows
from .safetensors_source import SafetensorsSource
from .tensor_names import RowLayout, gguf_name

ARCH = "llama"
# PEFT saves tensors as "base_model.model.<module path>.lora_A.weight".
_PREFIX = "base_model.model."


@dataclass(frozen=True)
class BaseModel:
    """What the adapter must fit: head counts for the rope layout and every weight's [rows, cols]."""

    n_head: int
    n_head_kv: int
    shapes: dict[str, tuple[int, int]]  # GGUF tensor name -> (out, in) in numpy order
    sha256: str | None                  # only for a GGUF base: the exact file the adapter is bound to
    n_vocab: int | None = None          # token ids an aLoRA invocation sequence may use


def _gguf_base(path: Path) -> BaseModel:
    info = read_gguf_info(path)
    if info.is_adapter:
        raise ConversionError(f"{path} is itself an adapter", hint="pass the base model GGUF as --base")
    if info.architecture != ARCH:
        raise ConversionError(f"base {path} has architecture {info.architecture!r}",
                              hint="LoRA conversion supports llama bases")
    n_head = int(info.metadata[f"{ARCH}.attention.head_count"])  # type: ignore[call-overload]
    n_head_kv = int(info.metadata.get(f"{ARCH}.attention.head_count_kv", n_head))  # type: ignore[call-overload]
    # GGUF stores ne (row length first); numpy order is the reverse.
    shapes = {t.name: (t.shape[1], t.shape[0]) for t in read_tensor_index(path) if len(t.shape) == 2}
    return BaseModel(n_head, n_head_kv, shapes, sha256_file(path), info.array_lengths.get("tokenizer.ggml.tokens"))


def _hf_base(folder: Path) -> BaseModel:
    config = read_config(folder)
    hp = llama_hparams(config, folder)
    shapes: dict[str, tuple[int, int]] = {}
    with SafetensorsSource(folder) as source:
        for name in source.names():
            mapped = gguf_name(name)
            shape = source.shape(name)
            if mapped is not None and len(shape) == 2:
                shapes[mapped[0]] = (shape[0], shape[1])
    vocab = config.get("vocab_size")
    return BaseModel(hp.n_head, hp.n_head_kv, shapes, None, vocab if isinstance(vocab, int) else None)


def load_base(base: Path) -> BaseModel:
    base = Path(base)
    if base.is_dir():
        return _hf_base(base)
    if base.is_file():
        return _gguf_base(base)
    raise ConversionError(f"base {base} does not exist", hint="pass the HF model folder or GGUF the adapter was trained on")


def _adapter_config(peft_dir: Path) -> dict[str, Any]:
    path = peft_dir / "adapter_config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConversionError(f"{peft_dir} has no adapter_config.json",
                              hint="pass a folder written by PEFT's save_pretrained") from exc
    except json.JSONDecodeError as exc:
        raise ConversionError(f"{path} is not valid JSON ({exc.msg})", hint="re-save the adapter") from exc
    problems = {
        "peft_type": (config.get("peft_type", "LORA") != "LORA", "only LoRA adapters can be converted"),
        "use_dora": (bool(config.get("use_dora")), "DoRA adapters have no GGUF form; train plain LoRA"),
        "bias": (config.get("bias", "none") != "none", "adapters that train biases cannot be converted; use bias='none'"),
        "alpha_pattern": (bool(config.get("alpha_pattern")), "per-module alpha cannot be expressed; use one lora_alpha"),
        "modules_to_save": (bool(config.get("modules_to_save")), "fully trained modules are not LoRA; merge them into the base"),
    }
    for key, (bad, hint) in problems.items():
        if bad:
            raise ConversionError(f"{path}: unsupported {key}={config.get(key)!r}", hint=hint)
    invocation = config.get("alora_invocation_tokens")
    if invocation is not None and (not isinstance(invocation, list) or not invocation or not all(
            isinstance(t, int) and not isinstance(t, bool) and 0 <= t < 2**32 for t in invocation)):
        raise ConversionError(f"{path}: alora_invocation_tokens must be a non-empty list of token ids, "
                              f"not {invocation!r}", hint="re-save the adapter with peft")
    return config


def invocation_tokens(config: dict[str, Any], base: BaseModel, where: Path) -> list[int] | None:
    """The aLoRA invocation sequence of a PEFT adapter config (None for a plain LoRA), checked against the base's vocabulary."""
    tokens = config.get("alora_invocation_tokens")
    if tokens is None:
        return None
    if base.n_vocab is not None and max(tokens) >= base.n_vocab:
        raise ConversionError(f"{where}: aLoRA invocation token {max(tokens)} is outside the base's "
                              f"{base.n_vocab}-token vocabulary", hint="convert it against the base it was trained on")
    return list(tokens)


def effective_alpha(config: dict[str, Any]) -> float:
    """The alpha to store so that llama.cpp's alpha/r scale equals PEFT's scale."""
    alpha = float(config.get("lora_alpha", 8))
    if config.get("use_rslora"):
        # rsLoRA scales by alpha/sqrt(r); llama.cpp divides by r, so store alpha*sqrt(r).
        ranks = {int(config["r"]), *map(int, (config.get("rank_pattern") or {}).values())}
        if len(ranks) != 1:
            raise ConversionError("rsLoRA with per-module ranks cannot be expressed with one alpha",
                                  hint="train with a single rank")
        return alpha * math.sqrt(ranks.pop())
    return alpha


def convert_lora_to_gguf(peft_dir: Path, base: Path, out: Path) -> Path:
    """Convert the PEFT adapter in ``peft_dir`` for ``base`` (HF folder or GGUF) to a GGUF adapter at ``out``."""
    peft_dir, base, out = Path(peft_dir), Path(base), Path(out)
    config = _adapter_config(peft_dir)
    base_model = load_base(base)
    invocation = invocation_tokens(config, base_model, peft_dir)
    with SafetensorsSource(peft_dir, what="adapter") as source:
        pairs = _plan(source, base_model, peft_dir)
        with atomic_file(out) as temp:
            writer = gguf.GGUFWriter(temp, ARCH)
            try:
                writer.add_type(gguf.GGUFType.ADAPTER)
                writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
                writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, effective_alpha(config))
                writer.add_name(peft_dir.name)
                if base_model.sha256 is not None:
                    writer.add_string(BASE_SHA256_KEY, base_model.sha256)
                if invocation is not None:  # llama.cpp reads a uint32 array
                    writer.add_key_value(ALORA_INVOCATION_KEY, invocation, gguf.GGUFValueType.ARRAY,
                                         gguf.GGUFValueType.UINT32)
                for name, hf_name, layout in pairs:
                    data = source.load(hf_name)
                    if layout is RowLayout.ROPE_Q:
                        data = interleave_rope_rows(data, base_model.n_head)
                    elif layout is RowLayout.ROPE_K:
                        data = interleave_rope_rows(data, base_model.n_head_kv)
                    writer.add_tensor(name, _half(data, hf_name, peft_dir))
                writer.write_header_to_file()
                writer.write_kv_data_to_file()
                writer.write_tensors_to_file()
            finally:
                writer.close()
    return out


def _half(data: np.ndarray, name: str, where: Path) -> np.ndarray:
    """``data`` as contiguous float16; values beyond its range (65504) are refused."""
    half = to_float16(data)
    if half is None:
        raise ConversionError(f"{where}: {name} has values that are not finite or beyond float16's range "
                              f"(|x| > {FLOAT16_MAX:.0f}); the adapter did not train sanely: retrain it")
    return half


def _plan(source: SafetensorsSource, base: BaseModel, where: Path) -> list[tuple[str, str, RowLayout]]:
    """(GGUF name, PEFT name, row layout) per tensor, A before B; refuse anything that does not fit."""
    pairs: list[tuple[str, str, RowLayout]] = []
    modules: dict[str, dict[str, str]] = {}
    for name in source.names():
        stem = name[len(_PREFIX):] if name.startswith(_PREFIX) else name
        for part in ("lora_A", "lora_B"):
            marker = f".{part}."
            if marker in stem:
                module = stem.partition(marker)[0]
                modules.setdefault(module, {})[part] = name
                break
        else:
            raise ConversionError(f"{where}: unsupported adapter tensor {name}",
                                  hint="only LoRA A/B matrices on linear layers can be converted")
    if not modules:
        raise ConversionError(f"{where} has no LoRA tensors", hint="pass a PEFT LoRA adapter folder")
    for module, parts in sorted(modules.items()):
        if set(parts) != {"lora_A", "lora_B"}:
            raise ConversionError(f"{where}: {module} lacks its {({'lora_A', 'lora_B'} - set(parts)).pop()} matrix",
                                  hint="re-save the adapter")
        mapped = gguf_name(module + ".weight")
        if mapped is None:
            raise ConversionError(f"{where}: LoRA on {module} is not supported",
                                  hint="target the attention (q/k/v/o_proj) and MLP (gate/up/down_proj) projections")
        gguf_weight, layout = mapped
        if gguf_weight not in base.shapes:
            raise ConversionError(f"{where}: the base has no tensor {gguf_weight} for {module}",
                                  hint="convert the adapter against the base it was trained on")
        rows, cols = base.shapes[gguf_weight]
        a_shape, b_shape = source.shape(parts["lora_A"]), source.shape(parts["lora_B"])
        if len(a_shape) != 2 or len(b_shape) != 2 or a_shape[1] != cols or b_shape[0] != rows or a_shape[0] != b_shape[1]:
            raise ConversionError(
                f"{where}: {module} has A {list(a_shape)} and B {list(b_shape)}, which do not fit the base's "
                f"{rows}x{cols} {gguf_weight} (the adapter was trained for another model size)",
                hint="convert it against the base it was trained on")
        pairs.append((f"{gguf_weight}.lora_a", parts["lora_A"], RowLayout.AS_IS))
        pairs.append((f"{gguf_weight}.lora_b", parts["lora_B"], layout))
    return pairs
