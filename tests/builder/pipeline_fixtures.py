"""Fixtures for the pipeline tests: a tiny random Llama, the router's embedding, recipes written to disk.

Imported by the test_pipeline*.py modules (tests/builder/conftest.py belongs to
the converter tests). Everything heavy is made once per session.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random SmolLM2-shaped Llama (2 layers, hidden 64, ChatML template) as an HF folder."""
    from .model_factory import save_tiny_smollm, smollm_tokenizer

    return save_tiny_smollm(tmp_path_factory.mktemp("tiny-llama"), smollm_tokenizer())


@pytest.fixture(scope="session")
def router_embedding_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The router's static embedding, distilled once per machine and kept in pytest's cache."""
    from edge_assistant.builder import router_embedding

    cache = getattr(request.config, "cache", None)
    root = Path(cache.mkdir("edge-assistant-router-embedding")) if cache else tmp_path_factory.mktemp("emb")
    return router_embedding.prepare(None, root)


def tiny_recipe_text(base: Path, embedding: Path, *, modifier_steps: int = 6, extra: str = "") -> str:
    """A recipe that runs every stage on the tiny model in about a minute; `automation` is an aLoRA modifier."""
    return textwrap.dedent(f"""\
        name = "tiny"
        seed = 0

        [base]
        model = "{base}"

        [demo_data]
        rows_per_domain = 40

        [phase1]
        data = ["demo:chat"]
        max_steps = 4
        batch_size = 4
        max_seq_len = 128
        learning_rate = 1e-3
        lora_r = 4
        lora_alpha = 8
        checkpoint_every = 2
        dtype = "fp32"
        merge_tolerance = 1e-3

        [quantize]
        outtype = "f32"
        qtype = "Q8_0"
        awq = true
        awq_calib_rows = 8

        [modifier_training]
        max_steps = {modifier_steps}
        batch_size = 4
        max_seq_len = 128
        learning_rate = 1e-2
        lora_r = 4
        lora_alpha = 8
        target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        checkpoint_every = 2
        dtype = "fp32"

        [[modifiers]]
        name = "code"
        description = "Python help"
        data = ["demo:code"]

        [[modifiers]]
        name = "automation"
        description = "Shell and cron"
        kind = "alora"
        data = ["demo:automation"]

        [router]
        embedding = "{embedding}"
        max_prompts_per_class = 40

        [eval]
        max_examples = 4
        n_ctx = 512
        n_threads = 1
        max_tasks = 2
        task_max_tokens = 12
        switch_tokens = 200
        {extra}""")


def write_recipe(folder: Path, text: str, name: str = "recipe.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def copy_build(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=False)
    return dst
