"""Router fixtures: one distilled embedding per machine (cached), one fitted router per session.

The distillation of all-MiniLM-L6-v2 (model2vec, about 80-120 s on 2 cores)
is cached in pytest's cache folder under a key of the source files and tool
versions, so only the first session on a machine pays for it. The router is
fitted from the package's seed prompts; the evaluation prompts in
tests/data/router_eval.jsonl are never shown to the fit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_assistant.bundle.manifest import BaseEntry, Manifest, RouterEntry, write_manifest
from edge_assistant.hashing import sha256_file

EVAL_FILE = Path(__file__).resolve().parents[2] / "data" / "router_eval.jsonl"


@pytest.fixture(scope="session")
def embedding_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static embedding distilled from the offline all-MiniLM-L6-v2 (runtime format)."""
    from edge_assistant.builder import router_embedding

    cache = getattr(request.config, "cache", None)
    root = Path(cache.mkdir("edge-assistant-router-embedding")) if cache else tmp_path_factory.mktemp("emb")
    return router_embedding.prepare(None, root)


@pytest.fixture(scope="session")
def router_bundle(embedding_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle folder whose manifest points at a router fitted from the seed prompts.

    `route` reads only the manifest and the router, so the base entry describes a
    file that is not there; nothing in these tests unpacks it.
    """
    from edge_assistant.builder.router_fit import fit_router
    from edge_assistant.builder.router_seed import load_examples

    bundle = tmp_path_factory.mktemp("bundle")
    router_dir = fit_router(load_examples(), bundle / "router", embedding_source=embedding_dir, seed=0)
    config = json.loads((router_dir / "router.json").read_text())
    files = {str(p.relative_to(router_dir)): sha256_file(p) for p in sorted(router_dir.rglob("*")) if p.is_file()}
    fake_sha = "0" * 64
    manifest = Manifest(
        name="router-test",
        base=BaseEntry(file="base.gguf.zst", sha256=fake_sha, size=0, packed_sha256=fake_sha, packed_size=0,
                       arch="llama", quant_type="Q4_1", context_length=2048),
        router=RouterEntry(dir="router", threshold=config["threshold"], files=files),
    )
    write_manifest(bundle, manifest)
    return bundle


@pytest.fixture(scope="session")
def router_dir(router_bundle: Path) -> Path:
    return router_bundle / "router"


@pytest.fixture(scope="session")
def router(router_dir: Path):
    from edge_assistant.router.router import Router

    return Router.load(router_dir)


@pytest.fixture(scope="session")
def eval_rows() -> list[dict]:
    return [json.loads(line) for line in EVAL_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
