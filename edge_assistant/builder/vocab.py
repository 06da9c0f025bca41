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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf

from ..errors import ConversionError

# The regex Llama 3's tokenizer.json uses (tiktoken's cl100k-style split).
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


@dataclass(frozen=True)
class PreTokenizer:
    name: str                          # llama.cpp's `tokenizer.ggml.pre`
    steps: tuple[tuple[Any, ...], ...]  # the fingerprint of tokenizer.json's pre_tokenizer


PRE_TOKENIZERS: tuple[PreTokenizer, ...] = (
    # Llama 3, 3.1, 3.2: one regex split (digits in runs of up to 3), then bytes without the GPT-2 regex
    PreTokenizer("llama-bpe", (("Split", LLAMA3_SPLIT), ("ByteLevel", False))),
    # SmolLM / SmolLM2 (StarCoder lineage): every digit on its own, then GPT-2's regex and bytes
    PreTokenizer("smollm", (("Digits", True), ("ByteLevel", True))),
    # GPT-2 itself: only its regex and bytes
    PreTokenizer("gpt-2", (("ByteLevel", True),)),
)

# Token texts that end a turn in chat models, tried in order for `tokenizer.ggml.eot_token_id`.
END_OF_TURN_TEXTS = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>")


@dataclass
class TokenizerMetadata:
    """Everything the GGUF's `tokenizer.*` keys hold for a BPE model."""

    pre: str
    tokens: list[str]
    types: list[int]
    merges: list[str]
    special_ids: dict[str, int] = field(default_factory=dict)   # bos, eos, eot, pad, unk
    add_bos: bool = False
    add_eos: bool = False
    chat_template: str | list[dict[str, str]] | None = None

    def write(self, writer: gguf.GGUFWriter) -> None:
        writer.add_tokenizer_model("gpt2")  # llama.cpp's name for byte-level BPE
        writer.add_tokenizer_pre(self.pre)
        writer.add_token_list(self.tokens)
        writer.add_token_types(self.types)
        writer.add_token_merges(self.merges)
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
            out.append(("Split", pattern.get("Regex", pattern.get("String"))))
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
    if model.get("type") != "BPE" or model.get("byte_fallback"):
        kind = model.get("type", "unknown") + (" with byte fallback" if model.get("byte_fallback") else "")
        raise ConversionError(f"unsupported tokenizer model {kind} in {path}",
                              hint="the converter supports byte-level BPE tokenizers (Llama 3, SmolLM2, GPT-2 style)")
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
    config = _read_json(hf_dir / "tokenizer_config.json")
    specials = {**_read_json(hf_dir / "special_tokens_map.json"), **config}
    ids = {text: i for i, (text, _) in by_id.items()}
    special_ids: dict[str, int] = {}
    for role in ("bos", "eos", "pad", "unk"):
        text = _token_text(specials.get(f"{role}_token"))
        if text is not None and text in ids:
            special_ids[role] = ids[text]
    for text in END_OF_TURN_TEXTS:
        if text in ids:
            special_ids["eot"] = ids[text]
            break
    add_bos, add_eos = _template_adds(tokenizer.get("post_processor"))
    add_bos = bool(config.get("add_bos_token", add_bos))
    add_eos = bool(config.get("add_eos_token", add_eos))
    return TokenizerMetadata(pre=pre, tokens=tokens, types=types, merges=merges, special_ids=special_ids,
                             add_bos=add_bos, add_eos=add_eos, chat_template=_chat_template(hf_dir, config))


def copy_gguf_tokenizer(writer: gguf.GGUFWriter, source: Path, vocab_size: int) -> None:
    """Copy every `tokenizer.*` key of ``source`` byte for byte (strings stay raw bytes)."""
    reader = gguf.GGUFReader(source)
    fields = {name: f for name, f in reader.fields.items() if name.startswith("tokenizer.")}
    tokens = fields.get("tokenizer.ggml.tokens")
    if tokens is None:
        raise ConversionError(f"{source} has no tokenizer in its metadata",
                              hint="pass a model GGUF (not an adapter) as the source")
    if len(tokens.data) != vocab_size:
        raise ConversionError(
            f"{source} has {len(tokens.data)} tokens but the model's embedding has {vocab_size} rows",
            hint="pass the GGUF this model was loaded from")
    for name, f in fields.items():
        main = f.types[0]
        if main == gguf.GGUFValueType.ARRAY:
            sub = f.types[-1]
            if sub == gguf.GGUFValueType.STRING:
                value: Any = [bytes(f.parts[i]) for i in f.data]
            else:
                value = f.contents()
            writer.add_key_value(name, value, main, sub_type=sub)
        elif main == gguf.GGUFValueType.STRING:
            writer.add_key_value(name, bytes(f.parts[f.data[0]]), main)
        else:
            writer.add_key_value(name, f.contents(), main)
