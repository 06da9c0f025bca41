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
    if q.get("plan"):
        lines += [f"### Per-tensor types planned to {q.get('target_size')}", "", q["plan"]]
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
