"""The runtime's static embedding equals model2vec's, and routing needs no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_assistant.router.embedding import StaticEmbedding

pytestmark = pytest.mark.builder

SENTENCES = ["Write a Python function that reverses a list.", "What is 17% of 340?",
             "Schedule a cron job for 2 am", "naïve café déjà vu", "   ", "😀"]


def test_runtime_encoding_matches_model2vec_on_the_same_tables(embedding_dir: Path):
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    ours = StaticEmbedding.load(embedding_dir)
    reference = StaticModel(vectors=ours.vectors.astype(np.float32),
                            tokenizer=Tokenizer.from_file(str(embedding_dir / "tokenizer.json")), normalize=True)
    expected = reference.encode(SENTENCES)
    got = ours.encode_many(SENTENCES)
    assert got.shape == expected.shape == (len(SENTENCES), ours.dim)
    np.testing.assert_allclose(got, expected, atol=2e-3)


def test_similar_requests_embed_closer_than_unrelated_ones(embedding_dir: Path):
    emb = StaticEmbedding.load(embedding_dir)
    a, b, c = emb.encode_many(["fix my python function", "debug this python method", "a recipe for apple pie"])
    assert a @ b > a @ c + 0.2


def test_loading_a_router_and_routing_imports_no_builder_stack(router_dir: Path):
    probe = (
        "import json, sys\n"
        "from edge_assistant.router.router import Router\n"
        f"d = Router.load({str(router_dir)!r}).route('now make it faster', previous='code')\n"
        "third = sorted({m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names) - {'edge_assistant'})\n"
        "print(json.dumps({'modifier': d.modifier, 'third_party': third}))\n"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                                    text=True).stdout)
    assert out["modifier"] == "code"
    forbidden = {"torch", "transformers", "peft", "model2vec", "safetensors", "sklearn", "textual"}
    assert forbidden.isdisjoint(out["third_party"]), out["third_party"]
    assert {"numpy", "tokenizers"} <= set(out["third_party"])


def test_a_saved_model2vec_folder_is_converted_once_and_reused(embedding_dir: Path, tmp_path: Path):
    from model2vec import StaticModel
    from tokenizers import Tokenizer

    from edge_assistant.builder import router_embedding

    ours = StaticEmbedding.load(embedding_dir)
    saved = tmp_path / "m2v"
    StaticModel(vectors=ours.vectors.astype(np.float32), tokenizer=Tokenizer.from_file(
        str(embedding_dir / "tokenizer.json")), normalize=True).save_pretrained(saved)
    converted = router_embedding.prepare(saved, tmp_path / "cache")
    assert converted.parent == tmp_path / "cache"
    again = StaticEmbedding.load(converted)
    np.testing.assert_array_equal(again.vectors, ours.vectors)
    stamp = (converted / "vectors.npy").stat().st_mtime_ns
    assert router_embedding.prepare(saved, tmp_path / "cache") == converted
    assert (converted / "vectors.npy").stat().st_mtime_ns == stamp


def test_a_folder_that_is_no_model_is_refused_with_the_next_step(tmp_path: Path):
    from edge_assistant.builder import router_embedding
    from edge_assistant.errors import BuildError

    with pytest.raises(BuildError, match="neither a sentence-transformers folder nor a distilled embedding"):
        router_embedding.prepare(tmp_path, tmp_path / "cache")


def test_a_folder_whose_model_transformers_cannot_read_is_a_build_error(tmp_path: Path):
    from edge_assistant.builder import router_embedding
    from edge_assistant.errors import BuildError

    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(BuildError, match="cannot distil the router embedding"):
        router_embedding.prepare(tmp_path, tmp_path / "cache")
