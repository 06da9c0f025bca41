"""`edge-assistant build RECIPE.toml`: the whole offline pipeline as explicit, resumable stages.

    data       generate demo data, validate every row, split train/validation
    phase1     LoRA on the full-precision base (bf16 on GPU, fp32 on CPU)
    merge      merge_and_unload + logit equivalence check -> safetensors
    convert    (AWQ scales, when enabled) -> GGUF float
    quantize   GGUF -> llama.cpp quant type
               (merge, convert and quantize are skipped with `[quantize] enabled = false`: a GGUF
               base is then used as it is)
    modifiers  one LoRA per modifier on the *quantized* base, dequantized -> GGUF adapters
    router     fitted from the modifiers' own training prompts
    evaluate   task success on hand-written held-out tasks (base, modifier, auto) and held-out NLL
    bundle     zstd pack, manifest quality fields, REPORT.md

Each stage folder ends with ``record.json``; a rerun skips stages whose config
and input hashes match their record, and a stage killed midway starts again
(training resumes from its last checkpoint).
"""


from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import RecipeError, UsageError
from . import demodata
from .base_model import check_llama_family, resolve_base
from .disk import check_free_space, remove_intermediates
from .context import STAGE_FOLDERS, STAGES, TRAINING_STAGES, BuildContext, as_table, quantized_gguf
from .recipe import Recipe, check_quantize, resolve_source
from .stage_record import StageRun
from .stages import RUNNERS

__all__ = ["STAGES", "STAGE_FOLDERS", "run_build", "default_out_dir"]


def _stage_spec(ctx: BuildContext, name: str) -> tuple[Any, dict[str, Path]]:
    """(config, input files) of a stage: what its fingerprint covers."""
    r = ctx.recipe
    data = ctx.stage_dir("data")
    if name == "data":
        # The recipe file itself is not an input: only the settings below are, so editing another
        # section of the recipe does not regenerate the data.
        # The generators' own source is an input: a changed generator regenerates the demo data.
        inputs: dict[str, Path] = {"demo-generators": Path(demodata.__file__).parent}
        for s in sorted({s for s in _all_sources(r)}):
            resolved = resolve_source(r, s)
            if isinstance(resolved, Path):
                inputs[f"source:{s}"] = resolved
        config = {"demo": as_table(r.demo_data), "seed": r.seed, "phase1": [r.phase1.data, r.phase1.val_fraction],
                  "modifiers": {m.name: [m.data, r.modifier_train(m).val_fraction] for m in r.modifiers},
                  "none": r.router.none_data, "phase1_enabled": r.phase1.enabled}
        return config, inputs
    if name == "phase1":
        return ({"train": as_table(r.phase1), "seed": r.seed, "base": ctx.base_config()},
                {**ctx.base_inputs(), "train": data / "phase1.train.jsonl", "val": data / "phase1.val.jsonl"})
    if name == "merge":
        inputs = dict(ctx.base_inputs())
        if r.phase1.enabled:
            inputs["adapter"] = ctx.stage_dir("phase1") / "adapter"
        return {"dtype": r.phase1.dtype, "tolerance": r.phase1.merge_tolerance, "base": ctx.base_config()}, inputs
    if name == "convert":
        inputs = {"model": ctx.stage_dir("merge") / "model"}
        if ctx.source.gguf_path:
            inputs["source_gguf"] = ctx.source.gguf_path
        return ({"outtype": r.quantize.outtype, "awq": ctx.awq, "awq_calib_rows": r.quantize.awq_calib_rows,
                 "importance": r.quantize.importance}, inputs)
    if name == "quantize":
        return ({"qtype": r.quantize.qtype, "importance": r.quantize.importance and ctx.awq,
                 "target_size": r.quantize.target_size},
                {"gguf": ctx.stage_dir("convert") / f"model-{r.quantize.outtype}.gguf"})
    if name == "modifiers":
        inputs = {"base": quantized_gguf(ctx)}
        for m in r.modifiers:
            inputs[f"{m.name}.train"] = data / f"modifier-{m.name}.train.jsonl"
        return {m.name: [as_table(r.modifier_train(m)), m.default_scale, m.kind] for m in r.modifiers}, inputs
    if name == "router":
        inputs = {"none": data / "router-none.jsonl"}
        for m in r.modifiers:
            inputs[m.name] = data / f"modifier-{m.name}.train.jsonl"
        return as_table(r.router), inputs
    if name == "evaluate":
        from .stages import task_dir

        inputs = {"base": quantized_gguf(ctx), "tasks": task_dir(ctx)}
        if ctx.enabled("router"):
            inputs["router"] = ctx.stage_dir("router") / "router"
        for m in r.modifiers:
            inputs[m.name] = ctx.stage_dir("modifiers") / m.name / f"{m.name}.gguf"
            inputs[f"{m.name}.val"] = data / f"modifier-{m.name}.val.jsonl"
        return {"eval": as_table(r.eval), "scales": {m.name: m.default_scale for m in r.modifiers}}, inputs
    if name == "bundle":
        inputs = {"base": quantized_gguf(ctx), "evaluate": ctx.stage_dir("evaluate") / "heldout.json"}
        for m in r.modifiers:
            inputs[m.name] = ctx.stage_dir("modifiers") / m.name / f"{m.name}.gguf"
        if ctx.enabled("router"):
            inputs["router"] = ctx.stage_dir("router") / "router"
        for prior in ("phase1", "merge", "quantize"):
            if ctx.enabled(prior):
                inputs[f"{prior}.record"] = ctx.stage_dir(prior) / "record.json"
        return {"name": r.name, "level": r.bundle_level, "external_base": r.external_base,
                "modifiers": [[m.name, m.description, m.default_scale] for m in r.modifiers]}, inputs
    raise AssertionError(name)


def _all_sources(recipe: Recipe) -> list[str]:
    from .recipe import all_data_sources

    return all_data_sources(recipe)


def _check_stage_name(name: str | None, flag: str) -> None:
    if name is not None and name not in STAGES:
        import difflib

        close = difflib.get_close_matches(name, STAGES, n=1)
        raise UsageError(f"{flag} {name!r} is not a stage",
                         hint=(f"did you mean '{close[0]}'? " if close else "") + f"stages: {', '.join(STAGES)}")


def default_out_dir(recipe: Recipe) -> Path:
    return Path("build_artifacts") / recipe.name


def run_build(recipe: Recipe, out: Path | None = None, *, from_stage: str | None = None,
              until_stage: str | None = None, awq: bool | None = None, progress: bool = True,
              keep_intermediates: bool = False, log: Callable[[str], None] = print) -> Path:
    """Run (or resume) a recipe; returns the bundle folder, or the output folder with --until.

    Before each stage that runs, its estimated disk footprint is checked against the free
    space under ``out`` (disk.check_free_space). When the build finishes, the modifiers'
    dequantized base copy is deleted unless ``keep_intermediates``.
    """
    _check_stage_name(from_stage, "--from")
    _check_stage_name(until_stage, "--until")
    # e.g. IQ2_XS with --no-awq (no calibration pass, so no importance): fail before any work
    check_quantize(recipe.quantize, recipe.path, awq=recipe.quantize.awq if awq is None else awq)
    out = Path(out) if out is not None else default_out_dir(recipe)
    source = resolve_base(recipe)
    check_llama_family(source, f"{recipe.path}: base.model")  # before any data is written or trained on
    if not recipe.quantize.enabled and source.gguf_path is None:
        raise RecipeError(f"{recipe.path}: [quantize] enabled = false needs a GGUF base, not {recipe.base.model}",
                          hint="point base.model at a .gguf file or package:NAME, or turn quantization on")
    ctx = BuildContext(recipe=recipe, out=out, source=source,
                       awq=recipe.quantize.awq if awq is None else awq, progress=progress, log=log)
    out.mkdir(parents=True, exist_ok=True)
    first = STAGES.index(from_stage) if from_stage else 0
    last = STAGES.index(until_stage) if until_stage else len(STAGES) - 1
    if first > last:
        raise UsageError(f"--from {from_stage} comes after --until {until_stage}", hint=f"stage order: {' '.join(STAGES)}")
    build_started = time.time()
    import torch
    from accelerate import PartialState

    # Sets up torch.distributed when launched by accelerate or torchrun (gloo on CPU, nccl on GPU).
    ctx._state = PartialState(cpu=not torch.cuda.is_available())
    if not ctx.is_main:
        ctx.log = log = lambda line: None
    for index, name in enumerate(STAGES):
        if not ctx.enabled(name):
            continue
        if index < first:
            ctx.record(name)  # an earlier stage must have finished for --from to make sense
            continue
        if index > last:
            break
        config, inputs = _stage_spec(ctx, name)
        missing = [str(p) for p in inputs.values() if not Path(p).exists()]
        if missing:
            raise UsageError(f"stage '{name}' needs {missing[0]}, which does not exist",
                             hint="run the earlier stages first (drop --from)")
        run = StageRun(name=name, dir=ctx.stage_dir(name), config=json.loads(json.dumps(config, default=str)),
                       inputs=inputs)
        skip = run.previous() is not None and from_stage != name
        ctx.wait()
        if skip:
            log(f"[{name}] unchanged since the last run: skipped")
            continue
        check_free_space(ctx, name)  # every rank: they all stop, none waits for a stage that never runs
        if ctx.is_main:
            run.invalidate()
            run.dir.mkdir(parents=True, exist_ok=True)
        ctx.wait()
        log(f"[{name}] running")
        # Training stages run on every process (each trains on its share of a batch); the others
        # (data, conversion, scoring, packing) run once, on rank 0, while the rest wait.
        if name in TRAINING_STAGES or ctx.is_main:
            RUNNERS[name](ctx, run)
        ctx.wait()
        if ctx.is_main:
            record = run.finish()
            log(f"[{name}] done in {record['seconds']:.1f} s")
        ctx.wait()
    if ctx.is_main and not keep_intermediates:
        freed = remove_intermediates(ctx)
        if freed:
            log(f"removed the modifiers' dequantized base copy ({freed / 1e9:.2f} GB); "
                "--keep-intermediates keeps it")
    ctx.wait()
    log(f"build finished in {time.time() - build_started:.0f} s: {out}")
    bundle = out / "bundle"
    return bundle if bundle.is_dir() and last == len(STAGES) - 1 else out
