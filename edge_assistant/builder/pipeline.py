"""`edge-assistant build RECIPE.toml`: the whole offline pipeline as explicit, resumable stages.

    data       generate demo data, validate every row, split train/validation
    phase1     LoRA on the full-precision base (bf16 on GPU, fp32 on CPU)
    merge      merge_and_unload + logit equivalence check -> safetensors
    convert    (AWQ scales, when enabled) -> GGUF float
    quantize   GGUF -> llama.cpp quant type, or per-tensor types planned to a size
    compare    the base against llama.cpp's own quantizer at its size (KL on held-out text)
               (merge, convert, quantize and compare are skipped with `[quantize] enabled = false`:
               a GGUF base is then used as it is)
    modifiers  one LoRA per modifier on the *quantized* base, dequantized -> GGUF adapters
    router     fitted from the modifiers' own training prompts
    evaluate   task success on hand-written held-out tasks (base, modifier, auto) and held-out NLL
    bundle     zstd pack, manifest quality fields, REPORT.md

Each stage is declared once, as a Stage in stages.py: the recipe settings and files it
reads, what it writes, its runner. Each stage folder ends with ``record.json``; a rerun
skips stages whose config and input hashes match their record, and a stage killed
midway starts again (training resumes from its last checkpoint).
"""


from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import BuildError, RecipeError, UsageError
from ..hashing import hash_once
from .base_model import check_llama_family, resolve_base
from .context import BuildContext
from .disk import check_free_space, remove_intermediates
from .recipe import Recipe, check_quantize
from .stage_record import RECORD_NAME, StageRun
from .stages import BUILD_STAGES, Stage, applies, bundle_dir, output_of, stage

STAGES = tuple(s.name for s in BUILD_STAGES)
STAGE_FOLDERS = {s.name: s.folder_name for s in BUILD_STAGES}

__all__ = ["STAGES", "STAGE_FOLDERS", "build_context", "run_build", "default_out_dir"]


def _check_stage_name(name: str | None, flag: str) -> None:
    if name is not None and name not in STAGES:
        import difflib

        close = difflib.get_close_matches(name, STAGES, n=1)
        raise UsageError(f"{flag} {name!r} is not a stage",
                         hint=(f"did you mean '{close[0]}'? " if close else "") + f"stages: {', '.join(STAGES)}")


def default_out_dir(recipe: Recipe) -> Path:
    return Path("build_artifacts") / recipe.name


def build_context(recipe: Recipe, out: Path | None = None, *, awq: bool | None = None, progress: bool = True,
                  log: Callable[[str], None] = print) -> BuildContext:
    """The context the stages of ``recipe`` run in, after the checks that need no work done."""
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
    if applies(ctx, "merge"):
        ctx.tokenizer_copy = output_of(ctx, "merge", "model")
    return ctx


def _finished_record(ctx: BuildContext, step: Stage) -> dict[str, Any]:
    path = step.dir(ctx) / RECORD_NAME
    if not path.is_file():
        raise UsageError(f"stage '{step.name}' has not finished in {ctx.out}",
                         hint=f"run the build without --from (or with --from {step.name}) first")
    return json.loads(path.read_text(encoding="utf-8"))


def _record_outputs(run: StageRun) -> None:
    """Record the stage's declared outputs; one it did not write is a bug in its runner."""
    for key, path in run.writes.items():
        if not path.exists():
            raise BuildError(f"stage '{run.name}' finished without writing its output {key} ({path})",
                             hint="this is a bug in the stage; rerun with --from " + run.name.split(":")[0])
        run.output(key, path)


@hash_once()  # every stage, modifier and the pack share one hash of each unchanged input
def run_build(recipe: Recipe, out: Path | None = None, *, from_stage: str | None = None,
              until_stage: str | None = None, awq: bool | None = None, progress: bool = True,
              keep_intermediates: bool = False, log: Callable[[str], None] = print) -> Path:
    """Run (or resume) a recipe; returns the bundle folder, or the output folder with --until.

    Each stage's rerun decision and record come from its Stage declaration (stages.py).
    Before each stage that runs, its estimated disk footprint is checked against the free
    space under ``out`` (disk.check_free_space). When the build finishes, the modifiers'
    dequantized base copy is deleted unless ``keep_intermediates``.
    """
    _check_stage_name(from_stage, "--from")
    _check_stage_name(until_stage, "--until")
    ctx = build_context(recipe, out, awq=awq, progress=progress, log=log)
    out = ctx.out
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
    for index, step in enumerate(BUILD_STAGES):
        name = step.name
        if not step.applies(recipe):
            continue
        if index < first:
            _finished_record(ctx, step)  # an earlier stage must have finished for --from to make sense
            continue
        if index > last:
            break
        run = step.prepare(ctx)
        missing = [str(p) for p in run.inputs.values() if not Path(p).exists()]
        if missing:
            raise UsageError(f"stage '{name}' needs {missing[0]}, which does not exist",
                             hint="run the earlier stages first (drop --from)")
        skip = run.previous() is not None and from_stage != name
        ctx.wait()
        if skip:
            log(f"[{name}] unchanged since the last run: skipped")
            continue
        check_free_space(ctx, run)  # every rank: they all stop, none waits for a stage that never runs
        if ctx.is_main:
            run.invalidate()
            run.dir.mkdir(parents=True, exist_ok=True)
        ctx.wait()
        log(f"[{name}] running")
        # Training stages run on every process (each trains on its share of a batch); the others
        # (data, conversion, scoring, packing) run once, on rank 0, while the rest wait.
        if step.training or ctx.is_main:
            step.run(ctx, run)
        ctx.wait()
        if ctx.is_main:
            _record_outputs(run)
            record = run.finish()
            log(f"[{name}] done in {record['seconds']:.1f} s")
        ctx.wait()
    if ctx.is_main and not keep_intermediates and applies(ctx, "modifiers"):
        freed = remove_intermediates(stage("modifiers").dir(ctx))
        if freed:
            log(f"removed the modifiers' dequantized base copy ({freed / 1e9:.2f} GB); "
                "--keep-intermediates keeps it")
    ctx.wait()
    log(f"build finished in {time.time() - build_started:.0f} s: {out}")
    bundle = bundle_dir(ctx)
    return bundle if bundle.is_dir() and last == len(STAGES) - 1 else out
