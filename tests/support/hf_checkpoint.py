"""Save a transformers Llama model as the safetensors folder the converters read (tests and benchmarks).

A model loaded with ``from_pretrained(dir, gguf_file=...)`` is already
dequantized to float, but transformers still tags it with its GGUF "quantizer"
and then refuses ``save_pretrained``. The tag carries no weights, so it is
detached for the save (and put back): the folder then holds plain float
safetensors, which is exactly what the GGUF was dequantized to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def save_hf_checkpoint(model: Any, tokenizer: Any, folder: Path) -> Path:
    """``save_pretrained`` model (safetensors) and tokenizer into ``folder``; return it."""
    folder = Path(folder)
    quantizer = getattr(model, "hf_quantizer", None)
    method = getattr(getattr(quantizer, "quantization_config", None), "quant_method", None)
    detach = quantizer is not None and str(getattr(method, "value", method)) == "gguf"
    config_quant = getattr(model.config, "quantization_config", None) if detach else None
    if detach:
        model.hf_quantizer = None
        if config_quant is not None:
            del model.config.quantization_config
    try:
        model.save_pretrained(folder, safe_serialization=True)
    finally:
        if detach:
            model.hf_quantizer = quantizer
            if config_quant is not None:
                model.config.quantization_config = config_quant
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder
