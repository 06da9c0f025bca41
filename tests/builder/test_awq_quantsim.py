"""The simulated quantizer must round exactly like ggml, or AWQ optimises the wrong error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, quants

from edge_assistant.builder.quantsim import fake_quantize, tensor_type
from edge_assistant.errors import UsageError

pytestmark = pytest.mark.builder

EXACT = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]


def _awkward_weights() -> np.ndarray:
    rng = np.random.default_rng(7)
    w = (rng.standard_normal((48, 256)) * 0.04).astype(np.float32)
    w[0, :32] = 0.0  # an all-zero block (d = 0)
    w[1, 32:64] = 0.01  # a constant block (max == min)
    w[2, 64:96] = np.linspace(-0.5, 0.5, 32)  # ties of |max| between -0.5 and 0.5
    w[3, 5] = 3.0  # one outlier
    w[4, :] = np.round(w[4, :] * 1000) / 1000  # values on a coarse grid: rounding ties
    return w


@pytest.mark.parametrize("qtype", EXACT)
def test_block32_types_match_the_ggml_reference_quantizer_bit_for_bit(qtype: str) -> None:
    w = _awkward_weights()
    w16 = w.astype(np.float16).astype(np.float32)  # what the quantizer reads from an f16 GGUF
    kind = getattr(GGMLQuantizationType, qtype)
    reference = quants.dequantize(quants.quantize(w16, kind), kind)
    ours = fake_quantize(torch.from_numpy(w), qtype).numpy()
    assert np.array_equal(ours, reference)


def test_more_bits_give_less_error() -> None:
    w = torch.from_numpy(_awkward_weights())
    errors = [float((fake_quantize(w, t) - w).pow(2).mean()) for t in ("Q4_0", "Q5_0", "Q8_0")]
    assert errors[0] > errors[1] > errors[2] > 0


def test_k_quants_fall_back_like_llama_cpp_when_rows_are_not_multiples_of_256() -> None:
    assert tensor_type("Q4_K_M", 576) == "Q5_0"
    assert tensor_type("Q5_K_M", 576) == "Q5_1"
    assert tensor_type("Q6_K", 576) == "Q8_0"
    assert tensor_type("Q4_K_M", 1536) == "Q4_K"
    assert tensor_type("q4_0", 576) == "Q4_0"


def test_k_quant_approximation_sits_between_its_neighbours() -> None:
    w = torch.randn(16, 512) * 0.05
    err = {t: float((fake_quantize(w, t) - w).pow(2).mean()) for t in ("Q3_K", "Q4_K", "Q6_K")}
    assert err["Q3_K"] > err["Q4_K"] > err["Q6_K"]


def test_an_unknown_type_is_a_usage_error_naming_the_choices() -> None:
    with pytest.raises(UsageError, match="Q4_0"):
        tensor_type("Q4_X", 576)
    with pytest.raises(UsageError, match="block-32"):
        fake_quantize(torch.zeros(4, 48), "Q4_0")
