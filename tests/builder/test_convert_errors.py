"""Bad input to the converters: one clear error naming what is supported, no file left behind,
and from the CLI one line on stderr with a non-zero exit."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edge_assistant.builder.convert import convert_hf_to_gguf
from edge_assistant.cli import main
from edge_assistant.errors import ConversionError

pytestmark = pytest.mark.builder


def _copy_model(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".gguf", ".tmp"))


def test_unsupported_architecture_is_named_with_what_is_supported(smollm_dir: Path, tmp_path: Path) -> None:
    model = _copy_model(smollm_dir, tmp_path / "mistral")
    config = json.loads((model / "config.json").read_text())
    config.update(architectures=["MistralForCausalLM"], model_type="mistral")
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConversionError, match=r"unsupported architecture MistralForCausalLM.*LlamaForCausalLM"):
        convert_hf_to_gguf(model, tmp_path / "out.gguf")
    assert _leftovers(tmp_path) == []


def test_cli_reports_an_unsupported_architecture_in_one_line_without_traceback(smollm_dir: Path,
                                                                              tmp_path: Path) -> None:
    model = _copy_model(smollm_dir, tmp_path / "gpt2")
    config = json.loads((model / "config.json").read_text())
    config.update(architectures=["GPT2LMHeadModel"], model_type="gpt2")
    (model / "config.json").write_text(json.dumps(config))
    result = CliRunner().invoke(main, ["build", "convert", str(model), "--out", str(tmp_path / "x.gguf")])
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "GPT2LMHeadModel" in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "x.gguf").exists()


class _Bomb:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_model_folder_with_only_pickle_weights_is_refused_without_unpickling(smollm_dir: Path,
                                                                            tmp_path: Path) -> None:
    model = _copy_model(smollm_dir, tmp_path / "pickled")
    (model / "model.safetensors").unlink()
    marker = tmp_path / "unpickled"
    (model / "pytorch_model.bin").write_bytes(pickle.dumps(_Bomb(marker)))
    with pytest.raises(ConversionError, match=r"pytorch_model\.bin.*never loaded"):
        convert_hf_to_gguf(model, tmp_path / "out.gguf")
    assert not marker.exists()


def test_byte_fallback_bpe_without_sentencepiece_spaces_is_refused_by_name(smollm_dir: Path,
                                                                         tmp_path: Path) -> None:
    model = _copy_model(smollm_dir, tmp_path / "spm")
    tokenizer = json.loads((model / "tokenizer.json").read_text())
    # byte fallback on a byte-level pre-tokenizer: neither llama.cpp's BPE nor its SentencePiece family
    tokenizer["model"]["byte_fallback"] = True
    (model / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(ConversionError, match="unsupported tokenizer model BPE with byte fallback"):
        convert_hf_to_gguf(model, tmp_path / "out.gguf")
    assert _leftovers(tmp_path) == []


def test_unknown_pre_tokenizer_is_refused_rather_than_guessed(smollm_dir: Path, tmp_path: Path) -> None:
    model = _copy_model(smollm_dir, tmp_path / "pre")
    tokenizer = json.loads((model / "tokenizer.json").read_text())
    tokenizer["pre_tokenizer"]["pretokenizers"][0]["individual_digits"] = False
    (model / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(ConversionError, match="unsupported pre-tokenizer.*llama-bpe, smollm, gpt-2"):
        convert_hf_to_gguf(model, tmp_path / "out.gguf")


def test_weights_that_do_not_match_config_are_refused(smollm_dir: Path, tmp_path: Path) -> None:
    model = _copy_model(smollm_dir, tmp_path / "mismatch")
    config = json.loads((model / "config.json").read_text())
    config["num_key_value_heads"] = 2  # the weights have 4 key/value heads
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConversionError, match="k_proj.*shape"):
        convert_hf_to_gguf(model, tmp_path / "out.gguf")
    assert _leftovers(tmp_path) == []


def test_cli_converts_quantizes_and_reports_fallbacks_as_json(smollm_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    f16 = tmp_path / "m.f16.gguf"
    result = runner.invoke(main, ["build", "convert", str(smollm_dir), "--out", str(f16), "--outtype", "f16"])
    assert result.exit_code == 0, result.output
    q = tmp_path / "m.q4km.gguf"
    result = runner.invoke(main, ["build", "quantize", str(f16), "--type", "Q4_K_M", "--out", str(q),
                                  "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # 64-wide rows cannot take 256-wide k-quant blocks: every quantized matrix falls back.
    from edge_assistant.builder.gguf_index import read_tensor_index

    matrices = {t.name for t in read_tensor_index(f16) if len(t.shape) == 2}
    assert {f["tensor"] for f in report["fallbacks"]} == matrices
    assert all(f["wanted"].endswith("_K") and not f["got"].endswith("_K") for f in report["fallbacks"])
    assert report["tensor_types"].get("Q4_K", 0) == 0


def test_quantize_refuses_an_unknown_type_and_an_adapter(smollm_f32: Path, tmp_path: Path) -> None:
    from edge_assistant.builder.quantize import quantize_gguf

    with pytest.raises(ConversionError, match="unknown quantization type 'Q3_FOO'.*Q4_K_M"):
        quantize_gguf(smollm_f32, tmp_path / "x.gguf", "Q3_FOO")
    fake_adapter = tmp_path / "adapter.gguf"
    import gguf

    writer = gguf.GGUFWriter(fake_adapter, "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ConversionError, match="adapter, not a model"):
        quantize_gguf(fake_adapter, tmp_path / "y.gguf", "Q8_0")
    assert not (tmp_path / "x.gguf").exists() and not (tmp_path / "y.gguf").exists()


def test_a_config_missing_a_required_field_names_it(smollm_dir: Path, tmp_path: Path) -> None:
    model = _copy_model(smollm_dir, tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    del config["hidden_size"]
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConversionError, match="no 'hidden_size'"):
        convert_hf_to_gguf(model, tmp_path / "out.gguf", outtype="f32")
    assert _leftovers(tmp_path) == []


def _poison(model: Path, value: float) -> str:
    """Set one weight of ``model``'s first q_proj to ``value``; returns the tensor's name."""
    from safetensors.numpy import load_file, save_file

    path = next(model.glob("*.safetensors"))
    tensors = load_file(path)
    name = next(n for n in tensors if n.endswith("q_proj.weight"))
    tensors[name] = tensors[name].astype(np.float32)
    tensors[name][0, 0] = value
    save_file(tensors, path)
    return name


def test_a_weight_beyond_float16_is_refused_for_f16_and_kept_by_bf16(smollm_dir: Path, tmp_path: Path) -> None:
    model = _copy_model(smollm_dir, tmp_path / "big")
    name = _poison(model, 1e6)  # float16 would store it as inf, and every logit would turn NaN
    with pytest.raises(ConversionError, match=f"{name}.*float16") as err:
        convert_hf_to_gguf(model, tmp_path / "out.gguf")
    assert "bf16" in (err.value.hint or ""), err.value.hint
    assert _leftovers(tmp_path) == []

    # From the command line (f16 is its default outtype): one line, naming the tensor and the next step.
    result = CliRunner().invoke(main, ["build", "convert", str(model), "--out", str(tmp_path / "cli.gguf")])
    assert result.exit_code != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and name in lines[0] and "--outtype bf16" in lines[0], lines
    assert "Traceback" not in result.output and _leftovers(tmp_path) == []

    from edge_assistant.builder.gguf_index import read_tensor_index

    out = convert_hf_to_gguf(model, tmp_path / "out.bf16.gguf", outtype="bf16")
    assert any(t.qtype.name == "BF16" for t in read_tensor_index(out))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_weight_that_is_not_finite_is_refused_for_every_outtype(smollm_dir: Path, tmp_path: Path,
                                                                   value: float) -> None:
    model = _copy_model(smollm_dir, tmp_path / "damaged")
    name = _poison(model, value)
    for outtype in ("f32", "q8_0"):
        with pytest.raises(ConversionError, match=f"{name} has values that are not finite"):
            convert_hf_to_gguf(model, tmp_path / f"out.{outtype}.gguf", outtype=outtype)
    assert _leftovers(tmp_path) == []
