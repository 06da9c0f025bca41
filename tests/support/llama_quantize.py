"""llama.cpp's own quantizer, `llama_model_quantize`, as the reference our quantizer must equal byte for byte.

Importance goes in through llama_model_quantize_params.imatrix (builder/quantize.py fills
that C struct array), which is what `llama-quantize --imatrix` passes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def llama_quantize(src: Path, out: Path, mix: str, importance: dict[str, np.ndarray] | None = None) -> None:
    """llama.cpp's own quantizer, with importance passed through llama_model_quantize_params.imatrix."""
    from edge_assistant.builder.quantize import quantize_gguf

    quantize_gguf(src, out, mix, threads=1, importance=importance)
