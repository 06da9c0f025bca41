"""Write real GGUF LoRA adapters with random weights, shaped to fit a real base.

llama.cpp's adapter format: ``general.type = adapter``, ``adapter.type = lora``,
``adapter.lora.alpha``, and per adapted weight ``W`` (GGUF shape [n_in, n_out])
two tensors ``W.lora_a`` [n_in, rank] and ``W.lora_b`` [rank, n_out] (GGUF order;
numpy arrays are the reverse). Both are random here (a trained adapter starts
with lora_b = 0), so the adapter really changes the base's outputs.

An activated LoRA (aLoRA) is the same file plus ``adapter.alora.invocation_tokens``,
an array of uint32 token ids (the only element type llama.cpp accepts).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from edge_assistant.bundle.ggufmeta import ALORA_INVOCATION_KEY, BASE_SHA256_KEY, read_gguf_info

if TYPE_CHECKING:
    from edge_assistant.runtime.modifier import ModifierSpec

# What opens an assistant turn in SmolLM2's chat template: where a random aLoRA for it turns on.
SMOLLM2_ASSISTANT_OPENER = "<|im_start|>assistant\n"


def _weight_shapes(base_gguf: Path, targets: Sequence[str]) -> tuple[str, dict[str, tuple[int, int]]]:
    # Our own header reader (85 ms) rather than GGUFReader (5-8 s on this vocabulary):
    # tests/unit/test_bundle_ggufmeta.py checks it against GGUFReader on the same file.
    info = read_gguf_info(base_gguf, tensors=True)
    arch = info.architecture or "llama"
    shapes = {}
    for name, shape in ((t.name, t.shape) for t in info.tensors or ()):
        parts = name.split(".")  # blk.N.<target>.weight
        if len(parts) == 4 and parts[0] == "blk" and parts[2] in targets and parts[3] == "weight":
            shapes[name] = (shape[0], shape[1])  # n_in, n_out
    if not shapes:
        raise ValueError(f"{base_gguf} has no blk.N.{{{','.join(targets)}}}.weight tensors")
    return arch, shapes


def write_random_lora(path: Path, base_gguf: Path, *, rank: int = 16,
                      targets: Sequence[str] = ("attn_q", "attn_v"), alpha: float = 32.0,
                      base_sha256: str | None = None, seed: int = 0, scale: float = 0.01,
                      invocation_tokens: Sequence[int] | None = None, dtype: Any = np.float32) -> Path:
    """Write a random LoRA adapter GGUF for ``base_gguf`` at ``path`` and return ``path``.

    ``base_sha256`` (if given) is stored as ``edge_assistant.base_sha256``, the
    binding the bundle tools check; leave it out to make an unbound adapter.
    ``invocation_tokens`` makes it an activated LoRA (llama.cpp's
    ``adapter.alora.invocation_tokens``, a uint32 array). ``dtype`` is the tensors' type:
    float32, or float16 as the builder writes them.
    """
    import gguf

    arch, shapes = _weight_shapes(Path(base_gguf), targets)
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    if base_sha256 is not None:
        writer.add_string(BASE_SHA256_KEY, base_sha256)
    if invocation_tokens is not None:
        writer.add_key_value(ALORA_INVOCATION_KEY, list(invocation_tokens), gguf.GGUFValueType.ARRAY,
                             gguf.GGUFValueType.UINT32)
    for name, (n_in, n_out) in sorted(shapes.items()):
        a = (rng.standard_normal((rank, n_in)) * scale).astype(dtype)   # GGUF [n_in, rank]
        b = (rng.standard_normal((n_out, rank)) * scale).astype(dtype)  # GGUF [rank, n_out]
        writer.add_tensor(f"{name}.lora_a", a)
        writer.add_tensor(f"{name}.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)


def random_modifiers(folder: Path, base_gguf: Path, kinds: Mapping[str, str], *, base_sha256: str, seed: int,
                     scale: float) -> dict[str, ModifierSpec]:
    """One random adapter per name in ``kinds`` ("lora", or "alora": active from SmolLM2's assistant opener), as specs.

    Seeds run from ``seed`` in the order of ``kinds``; each file is ``folder/<name>.gguf``, bound to ``base_sha256``.
    """
    from edge_assistant.runtime.engine import LlamaEngine
    from edge_assistant.runtime.modifier import ModifierSpec

    with LlamaEngine(base_gguf, threads=1, context_length=256) as probe:
        invocation = probe.tokenize(SMOLLM2_ASSISTANT_OPENER)
    specs = {}
    for i, (name, kind) in enumerate(kinds.items()):
        path = write_random_lora(Path(folder) / f"{name}.gguf", base_gguf, base_sha256=base_sha256, seed=seed + i,
                                 scale=scale, invocation_tokens=invocation if kind == "alora" else None)
        specs[name] = ModifierSpec(name, path, base_sha256, kind=kind)
    return specs
