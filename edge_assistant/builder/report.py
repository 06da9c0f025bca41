"""REPORT.md and the manifest's quality fields, both made from the stage records."""

from __future__ import annotations

from typing import Any

from .recipe import Recipe


def build_quality(recipe: Recipe, records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The manifest's ``quality`` object: phase losses, merge check, quantization, task success, held-out NLL."""
    quality: dict[str, Any] = {}
    if "phase1" in records:
        m = records["phase1"]["metrics"]
        quality["phase1"] = {"train_loss": m["final_train_loss"], "val_loss_before": m["val_loss_before"],
                             "val_loss_after": m["val_loss_after"], "steps": m["steps"]}
    if "quantize" not in records:  # `[quantize] enabled = false`: the base GGUF is used as it is
        quality["quantization"] = {"requantized": False, "base": recipe.base.model}
    else:
        merge = records["merge"]["metrics"]
        quality["merge"] = {"max_abs_logit_diff": merge["max_abs_logit_diff"],
                            "mean_abs_logit_diff": merge["mean_abs_logit_diff"], "tolerance": merge["tolerance"]}
        q = records["quantize"]["metrics"]
        awq = records.get("convert", {}).get("metrics", {}).get("awq")
        quality["quantization"] = {"type": q["qtype"], "bits_per_weight": q["bits_per_weight"],
                                   "fallback_tensors": len(q["fallbacks"] or []), "awq": bool(awq),
                                   "importance_tensors": q.get("importance_tensors", 0),
                                   "target_size": q.get("target_size")}
        compare = records.get("compare", {}).get("metrics")
        if compare and compare.get("kl_ratio") is not None:
            from .frontier import FrontierRow, best_llama_cpp

            rows = [FrontierRow(**r) for r in compare["rows"]]
            ours, best = next(r for r in rows if r.ours), best_llama_cpp(rows)
            quality["quantization"]["vs_llama_cpp"] = {"kl": ours.kl, "llama_cpp_best": best.label,
                                                       "llama_cpp_best_kl": best.kl, "kl_ratio": compare["kl_ratio"]}
    if "modifiers" in records:
        evaluate = records.get("evaluate", {}).get("metrics", {})
        heldout = evaluate.get("heldout_nll", {})
        tasks = (evaluate.get("task_success") or {}).get("domains", {})
        quality["modifiers"] = {}
        for m in recipe.modifiers:
            t = records["modifiers"]["metrics"][m.name]
            entry: dict[str, Any] = {}
            if m.name in tasks:  # task success leads; NLL and losses follow
                d = tasks[m.name]
                entry["task_success"] = {"tasks": d["tasks"], "base": d["base"], "modifier": d.get("with_modifier"),
                                         "auto": d.get("auto")}
            entry.update({**heldout.get(m.name, {}), "train_loss": t["final_train_loss"],
                          "val_loss_before": t["val_loss_before"], "val_loss_after": t["val_loss_after"],
                          "steps": t["steps"]})
            quality["modifiers"][m.name] = entry
        router = (evaluate.get("task_success") or {}).get("router")
        if router:
            quality["router"] = {"heldout_accuracy": router["accuracy"], "heldout_prompts": router["prompts"]}
        switch = evaluate.get("switch_cost")
        if switch:
            quality["switch_cost"] = {k: switch[k] for k in ("kind", "tokens", "switch_ratio", "switch_back_ratio")}
    return quality


def _fmt(x: Any, spec: str = ".4f") -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "n/a"


def _compression_lines(records: dict[str, dict[str, Any]], quality: dict[str, Any]) -> list[str]:
    """Phase 2's sections: the merge check and the quantization (with AWQ)."""
    lines: list[str] = []
    m = quality["merge"]
    lines += ["## Merge check", "",
              f"- max |logit difference| adapter model vs merged model: {m['max_abs_logit_diff']:.3g} "
              f"(mean {m['mean_abs_logit_diff']:.3g}, tolerance {m['tolerance']:g})", ""]
    q = records["quantize"]["metrics"]
    lines += ["## Quantization", "",
              f"- {q['qtype']}: {_fmt(q['bits_per_weight'], '.2f')} bits/weight, "
              f"{q['size'] / 1e6:.1f} MB (from {q['source_size'] / 1e6:.1f} MB)"]
    awq = records.get("convert", {}).get("metrics", {}).get("awq")
    if isinstance(awq, dict):
        lines.append(f"- AWQ scales for {awq.get('qtype')} folded in before conversion: {awq.get('n_layers')} blocks, "
                     f"{awq.get('calib_tokens')} calibration tokens, grid {awq.get('n_grid')}, "
                     f"clipping {'on' if awq.get('clip') else 'off'}, {_fmt(awq.get('seconds', 0.0), '.0f')} s")
    else:
        lines.append("- AWQ: off (`quantize.awq = false` or `--no-awq`)")
    if q.get("quantizer"):
        lines.append(f"- quantizer: {q['quantizer']} ({q.get('importance_tensors', 0)} tensors weighted by importance "
                     "from the AWQ calibration pass)")
    for fb in q["fallbacks"] or []:
        lines.append(f"- fallback: `{fb['tensor']}` wanted {fb['wanted']}, got {fb['got']}")
    lines.append("")
    compare = records.get("compare", {}).get("metrics")
    if compare:
        lines += _compare_lines(compare)
    if q.get("plan"):
        lines += [f"### Per-tensor types planned to {q.get('target_size')}", "", q["plan"]]
    return lines


def _compare_lines(compare: dict[str, Any]) -> list[str]:
    """The base against llama.cpp's own quantizer at about its size (the compare stage)."""
    from .frontier import FrontierRow, frontier_table

    rows = [FrontierRow(**r) for r in compare["rows"]]
    lines = ["### Against llama.cpp's own quantizer at this size", "",
             "llama.cpp's `llama_model_quantize` on the merged model before AWQ, for each llama.cpp mix whose file "
             "is about this size: plain, and with an importance matrix of the block linears (what llama-imatrix "
             f"collects) from the same {compare['calibration_tokens']} calibration tokens. KL divergence, "
             "perplexity and top-1 agreement against that f16 model, through llama.cpp, on held-out text no "
             "calibration saw; the ratio's baseline is llama.cpp's best file.", "", frontier_table(rows), ""]
    if compare.get("kl_ratio") is not None:
        verdict = "lower" if compare["kl_ratio"] < 1 else "not lower"
        lines += [f"- the base's KL is {compare['kl_ratio']:.2f}x that of {compare['best_llama_cpp']} ({verdict})", ""]
    return lines


def render_report(recipe: Recipe, records: dict[str, dict[str, Any]], quality: dict[str, Any]) -> str:
    lines = [f"# Build report: {recipe.name}", "",
             f"Base model: `{recipe.base.model}`  ", f"Recipe: `{recipe.path.name if recipe.path else ''}`", ""]
    lines += ["## Stages", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {name} | {rec['seconds']:.1f} |" for name, rec in records.items()]
    total = sum(rec["seconds"] for rec in records.values())
    lines += [f"| **total** | {total:.1f} |", ""]
    if "phase1" in quality:
        p = quality["phase1"]
        plan = records["phase1"]["metrics"]["plan"]
        lines += ["## Phase 1 (LoRA on the full-precision base, merged)", "",
                  f"- {plan['rows_per_step']} rows/step, at most {plan['max_tokens_per_step']} tokens/step, "
                  f"{plan['steps_per_epoch']} steps/epoch, {p['steps']} steps, {plan['dtype']}",
                  f"- validation loss {_fmt(p['val_loss_before'])} -> {_fmt(p['val_loss_after'])}; "
                  f"last train loss {_fmt(p['train_loss'])}", ""]
    if "quantize" not in records:
        lines += ["## Base", "", f"- `{recipe.base.model}` used as it is: no phase 1, no conversion, no "
                  "re-quantization; the modifiers were trained on it dequantized and bind to its sha256", ""]
    else:
        lines += _compression_lines(records, quality)
    if "modifiers" in quality:
        threshold = recipe.eval.min_nll_reduction
        lines += ["## Modifiers (trained on the quantized base)", "",
                  "Task success: the share of hand-written held-out tasks of each modifier's domain solved "
                  "(reasoning: final number right; code: the function passes its tests in a sandbox; automation: "
                  "a command that does what was asked, nothing destructive), by the base alone, by base + "
                  "modifier, and with the router choosing (`auto`); greedy replies of the shipped GGUF files "
                  "through llama.cpp. Then held-out NLL per answer token on rows of the modifier's own data.", "",
                  "| modifier | tasks | base | with modifier | auto | base NLL | modifier NLL | NLL reduction "
                  "| val loss before -> after (torch) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        warnings = []
        for name, d in quality["modifiers"].items():
            ts = d.get("task_success") or {}
            lines.append(f"| {name} | {ts.get('tasks', 'n/a')} | {_fmt(ts.get('base'), '.0%')} | "
                         f"{_fmt(ts.get('modifier'), '.0%')} | {_fmt(ts.get('auto'), '.0%')} | "
                         f"{_fmt(d.get('base_nll'))} | {_fmt(d.get('modifier_nll'))} | "
                         f"{_fmt(d.get('nll_reduction'), '.1%')} | "
                         f"{_fmt(d['val_loss_before'])} -> {_fmt(d['val_loss_after'])} |")
            if isinstance(ts.get("modifier"), float) and ts["modifier"] <= ts["base"]:
                warnings.append(f"- warning: `{name}` solves no more of its held-out tasks than the base alone")
            if isinstance(d.get("nll_reduction"), float) and d["nll_reduction"] < threshold:
                warnings.append(f"- warning: `{name}` lowers its domain NLL by less than {threshold:.0%}")
        if not any(d.get("task_success") for d in quality["modifiers"].values()):
            lines += ["", "(no hand-written held-out tasks for these modifiers' names: task success is measured "
                          "for modifiers named code, reasoning or automation)"]
        router = quality.get("router")
        if router:
            lines += ["", f"Router: {router['heldout_accuracy']:.1%} of {router['heldout_prompts']} hand-written "
                          "prompts its fit never saw go where they belong (the domain's modifier, or the base for "
                          "general chat and domains without a modifier)."]
        lines += ["", *warnings, ""] if warnings else [""]
    switch = records.get("evaluate", {}).get("metrics", {}).get("switch_cost")
    if switch:
        lines += _switch_lines(switch)
    return "\n".join(lines) + "\n"


def _switch_lines(switch: dict[str, Any]) -> list[str]:
    lines = ["## Switching modifiers", "",
             f"Kind: **{switch['kind']}**. The next turn's time to first token on a {switch['tokens']}-token "
             f"conversation, through the runtime's engine with kept states, as a ratio to the median "
             f"same-modifier turn measured in the same run: `{switch['x']}` first, then a switch to each of "
             + ", ".join(f"`{y}`" for y in switch["ys"]) + " and back.", "",
             "| turn | modifier | tokens read | TTFT ms | ratio |", "|---|---|---:|---:|---:|"]
    lines += [f"| {t['turn']} | {t['modifier']} | {t['read_tokens']} | {t['ttft_ms']:.0f} | {t['ratio']:.2f} |"
              for t in switch["turns"]]
    if "lora" in switch["kind"].split("/"):
        lines += ["", "A LoRA modifier changes every token's keys and values, so the first switch to it reads the "
                      "whole conversation again; switching back reuses its kept state. The base alone and every "
                      "aLoRA modifier share one state of the conversation."]
    return lines + [""]
