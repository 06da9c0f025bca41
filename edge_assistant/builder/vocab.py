"""Tokenizer metadata for a GGUF: from a Hugging Face `tokenizer.json`, or copied
verbatim from the GGUF a model was loaded from.

llama.cpp re-implements each tokenizer family itself; the GGUF only names the
family (`tokenizer.ggml.model`) and the pre-tokenizer (`tokenizer.ggml.pre`),
and lists tokens, types and merges. Naming the wrong pre-tokenizer gives a model
that loads and then splits text differently from training, so the pre-tokenizer
is identified from its exact definition in tokenizer.json (table below), never
guessed, and anything unknown is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

from ..errors import ConversionError
from .gguf_index import read_metadata

# The regex Llama 3's tokenizer.json uses (tiktoken's cl100k-style split).
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


@dataclass(frozen=True)
class PreTokenizer:
    name: str                          # llama.cpp's `tokenizer.ggml.pre`
    steps: tuple[tuple[Any, ...], ...]  # the fingerprint of tokenizer.json's pre_tokenizer


PRE_TOKENIZERS: tuple[PreTokenizer, ...] = (
    # Llama 3, 3.1, 3.2: one regex split (digits in runs of up to 3), then bytes without the GPT-2 regex
    PreTokenizer("llama-bpe", (("Split", LLAMA3_SPLIT, "Isolated", False), ("ByteLevel", False))),
    # SmolLM / SmolLM2 (StarCoder lineage): every digit on its own, then GPT-2's regex and bytes
    PreTokenizer("smollm", (("Digits", True), ("ByteLevel", True))),
    # GPT-2 itself: only its regex and bytes
    PreTokenizer("gpt-2", (("ByteLevel", True),)),
)

SPIECE_SPACE = "\u2581"  # ▁, SentencePiece's visible space
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")

# Token texts that end a turn in chat models, tried in order for `tokenizer.ggml.eot_token_id`.
END_OF_TURN_TEXTS = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>")


@dataclass
class TokenizerMetadata:
    """Everything the GGUF's `tokenizer.*` keys hold for a BPE model."""

    pre: str | None                    # None for SentencePiece-style vocabularies (no pre-tokenizer)
    tokens: list[str]
    types: list[int]
    merges: list[str]
    model: str = "gpt2"                # llama.cpp's family: gpt2 = byte-level BPE, llama = SentencePiece
    scores: list[float] | None = None  # SentencePiece merge priorities (higher merges first)
    add_space_prefix: bool | None = None
    special_ids: dict[str, int] = field(default_factory=dict)   # bos, eos, eot, pad, unk
    add_bos: bool = False
    add_eos: bool = False
    chat_template: str | list[dict[str, str]] | None = None

    def write(self, writer: gguf.GGUFWriter) -> None:
        writer.add_tokenizer_model(self.model)
        if self.pre is not None:
            writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        if self.scores is not None:
            writer.add_token_scores(self.scores)
        writer.add_token_types(self.types)
        if self.merges:
            writer.add_token_merges(self.merges)
        if self.add_space_prefix is not None:
            writer.add_add_space_prefix(self.add_space_prefix)
        adders = {"bos": writer.add_bos_token_id, "eos": writer.add_eos_token_id,
                  "eot": writer.add_eot_token_id, "pad": writer.add_pad_token_id,
                  "unk": writer.add_unk_token_id}
        for role, token_id in self.special_ids.items():
            adders[role](token_id)
        writer.add_add_bos_token(self.add_bos)
        writer.add_add_eos_token(self.add_eos)
        if self.chat_template:
            writer.add_chat_template(self.chat_template)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise ConversionError(f"{path} is not valid JSON ({exc.msg})", hint="re-save the tokenizer") from exc


def _fingerprint(pre: dict[str, Any] | None) -> tuple[tuple[Any, ...], ...]:
    if not pre:
        return ()
    steps = pre["pretokenizers"] if pre.get("type") == "Sequence" else [pre]
    out: list[tuple[Any, ...]] = []
    for step in steps:
        kind = step.get("type")
        if kind == "Split":
            pattern = step.get("pattern", {})
            out.append(("Split", pattern.get("Regex", pattern.get("String")), step.get("behavior"),
                        bool(step.get("invert"))))
        elif kind == "Digits":
            out.append(("Digits", bool(step.get("individual_digits"))))
        elif kind == "ByteLevel":
            if step.get("add_prefix_space"):
                out.append(("ByteLevel+prefix-space",))
            else:
                out.append(("ByteLevel", bool(step.get("use_regex", True))))
        else:
            out.append((str(kind),))
    return tuple(out)


def identify_pre_tokenizer(tokenizer: dict[str, Any], where: Path) -> str:
    found = _fingerprint(tokenizer.get("pre_tokenizer"))
    for row in PRE_TOKENIZERS:
        if row.steps == found:
            return row.name
    raise ConversionError(
        f"unsupported pre-tokenizer in {where}: {found or 'none'}",
        hint=f"supported byte-level BPE pre-tokenizers: {', '.join(r.name for r in PRE_TOKENIZERS)}")


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def _template_adds(post: dict[str, Any] | None) -> tuple[bool, bool]:
    """Whether tokenizer.json's post-processor puts a special token before/after a single text."""
    if not post:
        return False, False
    if post.get("type") == "Sequence":
        flags = [_template_adds(p) for p in post.get("processors", [])]
        return any(f[0] for f in flags), any(f[1] for f in flags)
    if post.get("type") != "TemplateProcessing":
        return False, False
    single = post.get("single", [])
    return (bool(single) and "SpecialToken" in single[0],
            bool(single) and "SpecialToken" in single[-1])


def _chat_template(hf_dir: Path, config: dict[str, Any]) -> str | list[dict[str, str]] | None:
    # transformers 5 saves the template as its own file; older versions keep it in tokenizer_config.json.
    jinja = hf_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    return config.get("chat_template")


def read_hf_tokenizer(hf_dir: Path, vocab_size: int) -> TokenizerMetadata:
    """Read tokenizer.json (+ tokenizer_config.json) as GGUF tokenizer metadata for ``vocab_size`` rows."""
    hf_dir = Path(hf_dir)
    path = hf_dir / "tokenizer.json"
    if not path.is_file():
        hint = ("SentencePiece-only tokenizers are not supported; save a fast tokenizer "
                "(tokenizer.json) with transformers") if (hf_dir / "tokenizer.model").is_file() else \
               "save the tokenizer next to the model with tokenizer.save_pretrained"
        raise ConversionError(f"{hf_dir} has no tokenizer.json", hint=hint)
    tokenizer = _read_json(path)
    model = tokenizer.get("model", {})
    if model.get("type") == "BPE" and model.get("byte_fallback") and _sentencepiece_spaces(tokenizer):
        return _read_sentencepiece_bpe(hf_dir, tokenizer, vocab_size)
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        kind = model.get("type", "unknown") + (" with byte fallback" if model.get("byte_fallback") else "")
        raise ConversionError(f"unsupported tokenizer model {kind} in {path}",
                              hint="the converter supports byte-level BPE (Llama 3, SmolLM2, GPT-2 style) and "
                                   "SentencePiece-style BPE with byte fallback and ▁ spaces (Llama 2, TinyLlama)")
    if tokenizer.get("normalizer"):
        raise ConversionError(f"unsupported tokenizer normalizer {tokenizer['normalizer'].get('type')} in {path}",
                              hint="byte-level BPE tokenizers without a normalizer are supported")
    pre = identify_pre_tokenizer(tokenizer, path)

    by_id: dict[int, tuple[str, int]] = {i: (t, int(gguf.TokenType.NORMAL)) for t, i in model["vocab"].items()}
    for added in tokenizer.get("added_tokens", []):
        kind = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
        by_id[int(added["id"])] = (added["content"], int(kind))
    if by_id and max(by_id) >= vocab_size:
        raise ConversionError(
            f"the tokenizer has token id {max(by_id)} but the model's embedding has only {vocab_size} rows",
            hint="the tokenizer does not belong to this model (if it was loaded from a GGUF, pass source_gguf)")
    tokens, types = [], []
    for i in range(vocab_size):
        text, kind = by_id.get(i, (f"[PAD{i}]", int(gguf.TokenType.UNUSED)))
        tokens.append(text)
        types.append(kind)

    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    meta = TokenizerMetadata(pre=pre, tokens=tokens, types=types, merges=merges)
    _add_specials(meta, hf_dir, tokenizer, {text: i for i, (text, _) in by_id.items()})
    return meta


def _add_specials(meta: TokenizerMetadata, hf_dir: Path, tokenizer: dict[str, Any], ids: dict[str, int]) -> None:
    """BOS/EOS/EOT/PAD/UNK ids, add-BOS/EOS policy and chat template from the tokenizer files."""
    config = _read_json(hf_dir / "tokenizer_config.json")
    specials = {**_read_json(hf_dir / "special_tokens_map.json"), **config}
    for role in ("bos", "eos", "pad", "unk"):
        text = _token_text(specials.get(f"{role}_token"))
        if text is not None and text in ids:
            meta.special_ids[role] = ids[text]
    for text in END_OF_TURN_TEXTS:
        if text in ids:
            meta.special_ids["eot"] = ids[text]
            break
    add_bos, add_eos = _template_adds(tokenizer.get("post_processor"))
    meta.add_bos = bool(config.get("add_bos_token", add_bos))
    meta.add_eos = bool(config.get("add_eos_token", add_eos))
    meta.chat_template = _chat_template(hf_dir, config)


def _sentencepiece_spaces(tokenizer: dict[str, Any]) -> bool:
    """True when spaces become ▁ with one prepended, as SentencePiece does (Llama 2, TinyLlama).

    Older files do it in the normalizer (Prepend ▁ + Replace ' ' -> ▁), newer ones in a
    Metaspace pre-tokenizer that does not split.
    """
    norm = tokenizer.get("normalizer") or {}
    steps = norm.get("normalizers", []) if norm.get("type") == "Sequence" else [norm]
    kinds = [(st.get("type"), st.get("prepend"), st.get("content")) for st in steps]
    if kinds == [("Prepend", SPIECE_SPACE, None), ("Replace", None, SPIECE_SPACE)] and not tokenizer.get("pre_tokenizer"):
        return all(st.get("pattern", {}).get("String") == " " for st in steps if st.get("type") == "Replace")
    pre = tokenizer.get("pre_tokenizer") or {}
    return (not norm and pre.get("type") == "Metaspace" and pre.get("replacement") == SPIECE_SPACE
            and pre.get("prepend_scheme", "always") in ("first", "always") and not pre.get("split", True))


def _read_sentencepiece_bpe(hf_dir: Path, tokenizer: dict[str, Any], vocab_size: int) -> TokenizerMetadata:
    """A BPE tokenizer.json converted from SentencePiece, as llama.cpp's `llama` (SPM) vocabulary.

    llama.cpp's SPM tokenizer repeatedly joins the adjacent pair whose joined text has
    the highest score; giving each token minus the rank of the merge that first makes
    it reproduces BPE's lowest-rank-first order. <0xXX> tokens are the byte fallback.
    """
    model = tokenizer["model"]
    by_id: dict[int, tuple[str, int]] = {}
    unk = model.get("unk_token")
    for text, i in model["vocab"].items():
        kind = gguf.TokenType.BYTE if _BYTE_TOKEN.fullmatch(text) else (
            gguf.TokenType.UNKNOWN if text == unk else gguf.TokenType.NORMAL)
        by_id[int(i)] = (text, int(kind))
    for added in tokenizer.get("added_tokens", []):
        text = added["content"]
        if _BYTE_TOKEN.fullmatch(text) or text == unk:
            continue
        kind = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
        by_id[int(added["id"])] = (text, int(kind))
    if by_id and max(by_id) >= vocab_size:
        raise ConversionError(
            f"the tokenizer has token id {max(by_id)} but the model's embedding has only {vocab_size} rows",
            hint="the tokenizer does not belong to this model")
    rank_of: dict[str, int] = {}
    for rank, merge in enumerate(model.get("merges", [])):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        rank_of.setdefault(left + right, rank)
    tokens, types, scores = [], [], []
    for i in range(vocab_size):
        text, kind = by_id.get(i, (f"[PAD{i}]", int(gguf.TokenType.UNUSED)))
        tokens.append(text)
        types.append(kind)
        scores.append(-float(rank_of[text] + 1) if text in rank_of else 0.0)
    meta = TokenizerMetadata(pre=None, tokens=tokens, types=types, merges=[], model="llama", scores=scores,
                             add_space_prefix=True)
    _add_specials(meta, hf_dir, tokenizer, {text: i for i, (text, _) in by_id.items()})
    return meta


def copy_gguf_tokenizer(writer: gguf.GGUFWriter, source: Path, vocab_size: int) -> None:
    """Copy every `tokenizer.*` key of ``source`` byte for byte (strings stay raw bytes)."""
    entries = read_metadata(source, "tokenizer.")
    tokens = entries.get("tokenizer.ggml.tokens")
    if tokens is None:
        raise ConversionError(f"{source} has no tokenizer in its metadata",
                              hint="pass a model GGUF (not an adapter) as the source")
    count = len(tokens.value)  # type: ignore[arg-type]
    if count != vocab_size:
        raise ConversionError(f"{source} has {count} tokens but the model's embedding has {vocab_size} rows",
                              hint="pass the GGUF this model was loaded from")
    for key, entry in entries.items():
        writer.add_key_value(key, entry.value, entry.vtype, sub_type=entry.sub_type)
