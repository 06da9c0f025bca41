"""Hyperparameters of a Llama-family Hugging Face checkpoint, read from config.json.

Only what llama.cpp's `llama` architecture can express is accepted; anything else
(another architecture, biases, an unknown rope scaling) is refused up front with a
message naming what is supported, before a single byte is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConversionError

# Hugging Face `architectures` entries this converter writes as llama.cpp's `llama`.
SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM",)
# Rope scalings we can express: none, linear (a scaling factor key) and llama3 (the rope_freqs tensor).
SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")


@dataclass(frozen=True)
class RopeScaling:
    """Llama 3.1-style rope scaling (or linear, where only ``factor`` matters)."""

    rope_type: str
    factor: float
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_context: int = 8192


@dataclass(frozen=True)
class LlamaHParams:
    n_layer: int
    n_embd: int
    n_ff: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ctx: int
    rms_eps: float
    rope_theta: float
    vocab_size: int
    tied_embeddings: bool
    rope_scaling: RopeScaling | None
    name: str

    @property
    def n_embd_k(self) -> int:
        return self.head_dim * self.n_head_kv


def read_config(model_dir: Path) -> dict[str, Any]:
    path = Path(model_dir) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConversionError(f"{model_dir} has no config.json",
                              hint="pass a Hugging Face model folder saved with save_pretrained") from exc
    except json.JSONDecodeError as exc:
        raise ConversionError(f"{path} is not valid JSON ({exc.msg})", hint="re-save the model") from exc


def llama_hparams(config: dict[str, Any], where: Path) -> LlamaHParams:
    """Validate ``config`` as a llama-architecture model and return its hyperparameters."""
    architectures = config.get("architectures") or []
    supported = (any(a in SUPPORTED_ARCHITECTURES for a in architectures) if architectures
                 else config.get("model_type") == "llama")
    if not supported:
        found = ", ".join(architectures) or config.get("model_type") or "none given"
        raise ConversionError(
            f"unsupported architecture {found} in {where}/config.json",
            hint=f"the converter supports {', '.join(SUPPORTED_ARCHITECTURES)} "
                 "(Llama 2/3/3.1/3.2, SmolLM2, TinyLlama)")
    for flag in ("attention_bias", "mlp_bias"):
        if config.get(flag):
            raise ConversionError(f"{where}: {flag}=true is not supported",
                                  hint="only bias-free Llama projections can be converted")
    act = config.get("hidden_act", "silu")
    if act != "silu":
        raise ConversionError(f"{where}: hidden_act={act!r} is not supported", hint="Llama models use silu")

    n_embd = int(config["hidden_size"])
    n_head = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or n_embd // n_head)
    rope_theta, scaling = _rope(config, where)
    return LlamaHParams(
        n_layer=int(config["num_hidden_layers"]),
        n_embd=n_embd,
        n_ff=int(config["intermediate_size"]),
        n_head=n_head,
        n_head_kv=int(config.get("num_key_value_heads") or n_head),
        head_dim=head_dim,
        n_ctx=int(config.get("max_position_embeddings", 2048)),
        rms_eps=float(config.get("rms_norm_eps", 1e-6)),
        rope_theta=rope_theta,
        vocab_size=int(config["vocab_size"]),
        tied_embeddings=bool(config.get("tie_word_embeddings", False)),
        rope_scaling=scaling,
        name=str(config.get("_name_or_path") or Path(where).name),
    )


def _rope(config: dict[str, Any], where: Path) -> tuple[float, RopeScaling | None]:
    # transformers 5 keeps theta and scaling together in `rope_parameters`; older configs
    # use `rope_theta` plus an optional `rope_scaling` dict.
    params = config.get("rope_parameters") or {}
    scaling = config.get("rope_scaling") or params
    theta = float(params.get("rope_theta") or config.get("rope_theta") or 10000.0)
    rope_type = str(scaling.get("rope_type") or scaling.get("type") or "default")
    if rope_type not in SUPPORTED_ROPE_TYPES:
        raise ConversionError(f"{where}: rope scaling {rope_type!r} is not supported",
                              hint=f"supported: {', '.join(SUPPORTED_ROPE_TYPES)}")
    if rope_type == "default":
        return theta, None
    factor = float(scaling["factor"])
    if rope_type == "linear":
        return theta, RopeScaling("linear", factor)
    return theta, RopeScaling(
        "llama3", factor,
        low_freq_factor=float(scaling.get("low_freq_factor", 1.0)),
        high_freq_factor=float(scaling.get("high_freq_factor", 4.0)),
        original_context=int(scaling.get("original_max_position_embeddings", 8192)),
    )
