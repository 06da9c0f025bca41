"""Static sentence embeddings at runtime: a tokenizer plus one vector per token, averaged.

The table is a model2vec distillation of all-MiniLM-L6-v2, made at build time
(``edge_assistant.builder.router_embedding``) and stored in the router folder as

    embedding/tokenizer.json   a Hugging Face ``tokenizers`` file
    embedding/vectors.npy      float16 [vocab, dim], one row per token id
    embedding/embedding.json   {"dim", "unk_id", "source", ...}

Encoding is model2vec's: tokenize without special tokens, drop unknown tokens,
mean of the rows, L2-normalise. It needs numpy and ``tokenizers`` (a small Rust
wheel), no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..document import loads_json
from ..errors import RouterError

EMBEDDING_DIR = "embedding"
TOKENIZER_FILE = "tokenizer.json"
VECTORS_FILE = "vectors.npy"
META_FILE = "embedding.json"

# Token budget per message: the opening of a message says what it is about; a
# pasted megabyte must not cost more than a normal question.
MAX_TOKENS = 256


@dataclass
class StaticEmbedding:
    tokenizer: Any                 # tokenizers.Tokenizer
    vectors: np.ndarray            # [vocab, dim], float16 or float32
    unk_id: int | None
    meta: dict[str, Any]

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @classmethod
    def load(cls, folder: Path) -> "StaticEmbedding":
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - a broken install
            raise RouterError("the router needs the 'tokenizers' package",
                              hint="reinstall edge-assistant (pip install tokenizers)") from exc
        folder = Path(folder)
        files = {name: folder / name for name in (TOKENIZER_FILE, VECTORS_FILE, META_FILE)}
        missing = [name for name, path in files.items() if not path.is_file()]
        if missing:
            raise RouterError(f"router embedding in {folder} is missing {', '.join(missing)}",
                              hint="rebuild the router (`edge-assistant build`) or re-download the bundle")
        try:
            meta = loads_json(files[META_FILE].read_text(encoding="utf-8"))
            tokenizer = Tokenizer.from_file(str(files[TOKENIZER_FILE]))
            vectors = np.load(files[VECTORS_FILE], allow_pickle=False)
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON; numpy ValueError/OSError
            raise RouterError(f"cannot read the router embedding in {folder} ({exc})",
                              hint="re-download the bundle or rebuild the router") from exc
        if vectors.ndim != 2 or vectors.dtype not in (np.float16, np.float32):
            raise RouterError(f"{files[VECTORS_FILE]} must be a 2-D float16/float32 array",
                              hint="rebuild the router")
        if tokenizer.get_vocab_size() > vectors.shape[0]:
            raise RouterError(f"router tokenizer has {tokenizer.get_vocab_size()} tokens but only "
                              f"{vectors.shape[0]} vectors", hint="rebuild the router")
        # Padding or truncation settings in tokenizer.json would change what is averaged.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        unk_id = meta.get("unk_id")
        return cls(tokenizer, vectors, int(unk_id) if isinstance(unk_id, int) else None, meta)

    def token_ids(self, text: str) -> list[int]:
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        if self.unk_id is not None:
            ids = [i for i in ids if i != self.unk_id]
        return ids[:MAX_TOKENS]

    def encode(self, text: str) -> np.ndarray:
        """Unit vector for ``text``; all zeros when no known token is in it (emoji, empty text)."""
        ids = self.token_ids(text)
        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        mean = self.vectors[ids].astype(np.float32).mean(axis=0)
        norm = float(np.linalg.norm(mean))
        return mean / norm if norm > 0 else mean

    def encode_many(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.encode(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
