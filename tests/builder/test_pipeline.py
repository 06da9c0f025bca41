"""Every stage on a tiny random Llama: real peft, real merge, real conversion, real llama.cpp at the end."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from edge_assistant.builder.context import BuildContext
from edge_assistant.builder.pipeline import STAGE_FOLDERS, STAGES, build_context, run_build
from edge_assistant.builder.recipe import load_recipe
from edge_assistant.builder.stages import BUILD_STAGES, bundle_dir
from tests.support.hashreads import counting_hash_reads

from .pipeline_fixtures import copy_build, router_embedding_dir, tiny_llama, tiny_recipe_text, write_recipe

pytestmark = [pytest.mark.builder, pytest.mark.slow]
__all__ = ["router_embedding_dir", "tiny_llama"]  # fixtures used by name below


# Paths the build opened or listed from Python while a stage ran: (stage, path). An audit hook
# cannot be removed, so it only records while `_RUNNING` names a stage of the build below.
_RUNNING: list[str] = []
_TOUCHED: list[tuple[str, Path]] = []


def _watch(event: str, args: tuple) -> None:
    if _RUNNING and event in ("open", "os.listdir", "os.scandir") and args \
            and isinstance(args[0], (str, bytes, os.PathLike)):
        _TOUCHED.append((_RUNNING[0], Path(os.path.abspath(os.fsdecode(args[0])))))


@pytest.fixture(scope="module")
def built(tiny_llama: Path, router_embedding_dir: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Path, Path, list[str]]:
    """(recipe, output folder, log lines) of one full build of the tiny recipe; `_TOUCHED` holds what it read."""
    folder = tmp_path_factory.mktemp("tiny-build")
    recipe = write_recipe(folder, tiny_recipe_text(tiny_llama, router_embedding_dir))
    log: list[str] = []

    def watch_stages(line: str) -> None:
        log.append(line)
        if m := re.fullmatch(r"\[(\w+)\] (running|done in .*)", line):
            _RUNNING[:] = [m[1]] if m[2] == "running" else []

    sys.addaudithook(_watch)
    try:
        with counting_hash_reads() as reads:
            run_build(load_recipe(recipe), folder / "out", progress=False, log=watch_stages)
    finally:
        _RUNNING.clear()
    (folder / "hash-reads.json").write_text(json.dumps({str(p): n for p, n in reads.items()}))
    return recipe, folder / "out", log


def test_the_build_reads_each_input_once_to_hash_it(built: tuple[Path, Path, list[str]]) -> None:
    _recipe, out, _log = built
    reads = json.loads((out.parent / "hash-reads.json").read_text())
    base = str((out / "quantize" / "model-Q8_0.gguf").resolve())
    # The quantized base is a stage input three times, bound to by each modifier, and packed.
    assert reads.get(base) == 1, reads.get(base)
    assert {p: n for p, n in reads.items() if n != 1} == {}


def test_every_stage_writes_a_record_with_input_hashes_and_tool_versions(built: tuple[Path, Path, list[str]]) -> None:
    _recipe, out, log = built
    for stage in STAGES:
        record = json.loads((out / STAGE_FOLDERS[stage] / "record.json").read_text())
        assert record["stage"] == stage
        assert all(len(i["sha256"]) == 64 for i in record["inputs"].values())
        assert "torch" in record["tool_versions"] and record["seconds"] >= 0
        assert f"[{stage}] done" in "\n".join(log)


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def test_every_stage_reads_only_the_inputs_its_stage_declares(built: tuple[Path, Path, list[str]]) -> None:
    # What a stage runner opens or lists under the build folder must be its own folder or an input
    # its Stage declares (and so hashed into its record). llama.cpp's own reads (C code) are not
    # seen here; the files it loads are declared by the same stages anyway.
    recipe, out, _log = built
    out = Path(os.path.abspath(out))
    seen: dict[str, list[Path]] = {s: [] for s in STAGES}
    for name, path in _TOUCHED:
        if _within(path, out):
            seen[name].append(path)
    for name in STAGES:
        assert seen[name], f"no file access seen while {name} ran: the audit hook recorded nothing"
        record = json.loads((out / STAGE_FOLDERS[name] / "record.json").read_text())
        allowed = [out / STAGE_FOLDERS[name]] + [Path(os.path.abspath(i["path"])) for i in record["inputs"].values()]
        exact: set[Path] = set()
        if name == "bundle":  # the finished bundle, written through a temp folder beside it (and that folder synced)
            target = Path(os.path.abspath(bundle_dir(build_context(load_recipe(recipe), out))))
            allowed += [target] + [p for p in seen[name] if p.parent == out and p.name.startswith(f".{target.name}.")]
            exact.add(target.parent)
        undeclared = sorted({str(p) for p in seen[name] if p not in exact and not any(_within(p, a) for a in allowed)})
        assert not undeclared, f"stage {name} read paths its Stage does not declare: {undeclared}"


def _stale(ctx: BuildContext) -> list[str]:
    """The stages a rerun would run again: those whose declared config and inputs no longer match their record."""
    return [s.name for s in BUILD_STAGES if s.applies(ctx.recipe) and s.prepare(ctx).previous() is None]


def test_the_rerun_decision_changes_exactly_when_a_declared_input_changes(
        built: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    recipe, out, _log = built
    copy = copy_build(out, tmp_path / "out")
    ctx = build_context(load_recipe(recipe), copy, progress=False, log=lambda line: None)
    assert _stale(ctx) == []
    declared = {s.name: list(s.prepare(ctx).inputs.values()) for s in BUILD_STAGES if s.applies(ctx.recipe)}
    inside = sorted({p for paths in declared.values() for p in paths if _within(p, copy)})
    assert len(inside) >= 20  # data splits, adapters, models, records: most inputs are earlier stages' outputs
    for path in inside:
        readers = [name for name, paths in declared.items() if any(_within(path, p) for p in paths)]
        if path.is_dir():
            extra = path / "extra.txt"
            extra.write_text("a file the folder did not have\n")
            assert _stale(ctx) == readers, path
            extra.unlink()
        else:
            original = path.read_bytes()
            path.write_bytes(original + b"\n")
            assert _stale(ctx) == readers, path
            path.write_bytes(original)
        assert _stale(ctx) == [], path
    # Every file no stage declares (details, checkpoints, demo files, the bundle) can change freely.
    undeclared = [p for p in copy.rglob("*") if p.is_file() and not any(_within(p, i) for i in inside)]
    assert any(p.name == "tasks.jsonl" for p in undeclared) and any("checkpoints" in p.parts for p in undeclared)
    for path in undeclared:
        with open(path, "ab") as f:
            f.write(b"\n")
    assert _stale(ctx) == []


def test_the_convert_stage_applied_awq_scales_before_conversion(built: tuple[Path, Path, list[str]]) -> None:
    _recipe, out, _log = built
    record = json.loads((out / STAGE_FOLDERS["convert"] / "record.json").read_text())
    awq = record["metrics"]["awq"]
    assert isinstance(awq, dict) and awq, "the recipe enables AWQ, so its report must be recorded"
    assert (out / STAGE_FOLDERS["convert"] / "awq-model" / "awq.json").is_file()
    assert "AWQ scales for Q8_0 folded in" in (out / "bundle" / "REPORT.md").read_text()


def test_awq_calibrates_on_phase1_and_every_modifiers_training_rows_in_turn(
        built: tuple[Path, Path, list[str]]) -> None:
    recipe, out, _log = built
    names = ["phase1"] + [f"modifier-{m.name}" for m in load_recipe(recipe).modifiers]
    data = out / STAGE_FOLDERS["data"]
    rows = {n: ["\n\n".join(m["content"] for m in json.loads(line)["messages"])
                for line in (data / f"{n}.train.jsonl").read_text().splitlines()][:8] for n in names}
    calib = (out / STAGE_FOLDERS["convert"] / "awq-calib.txt").read_text(encoding="utf-8")
    assert len(names) >= 3 and all(len(r) == 8 for r in rows.values())  # awq_calib_rows = 8 of each source
    # one row of each source in turn, so the first tokens AWQ and the type plan read cover every domain
    assert calib == "\n\n".join(rows[n][i] for i in range(8) for n in names) + "\n"


def test_the_compare_stage_scores_the_base_against_llama_cpps_own_files_of_its_size(
        built: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    """llama.cpp's files are made from the merged model *before* AWQ and every file is scored against it."""
    from edge_assistant.builder.convert import convert_hf_to_gguf
    from edge_assistant.builder.evaluate import HELDOUT_TEXT, evaluate_gguf
    from edge_assistant.bundle.manifest import load_manifest
    from tests.support.llama_quantize import llama_quantize

    _recipe, out, _log = built
    metrics = json.loads((out / STAGE_FOLDERS["compare"] / "record.json").read_text())["metrics"]
    rows = metrics["rows"]
    ours = [r for r in rows if r["ours"]]
    theirs = [r for r in rows if not r["ours"]]
    base = out / "quantize" / "model-Q8_0.gguf"
    assert len(ours) == 1 and ours[0]["size"] == base.stat().st_size
    assert ours[0]["importance"] is True  # the tiny recipe's quantize stage weights by importance
    mixes = list(dict.fromkeys(r["mix"] for r in theirs))
    assert mixes and mixes[0] == "Q8_0"  # the recipe's own mix is matched first
    assert sorted((r["mix"], r["importance"]) for r in theirs) == sorted((m, w) for m in mixes for w in (False, True))
    assert not list((out / STAGE_FOLDERS["compare"]).glob("**/*.gguf")), "llama.cpp's files are deleted once scored"

    # The same numbers from scratch: the merged model converted again, llama.cpp's own quantizer on it.
    f32 = convert_hf_to_gguf(out / "merge" / "model", tmp_path / "unscaled-f32.gguf", outtype="f32")
    heldout = HELDOUT_TEXT.read_text(encoding="utf-8")
    plain = tmp_path / "plain.gguf"
    llama_quantize(f32, plain, mixes[0])
    for path, row in ((plain, next(r for r in theirs if r["mix"] == mixes[0] and not r["importance"])),
                      (base, ours[0])):
        r = evaluate_gguf(path, reference=f32, text=heldout, n_ctx=512, threads=1)
        assert row["kl"] == pytest.approx(r.kl_divergence, rel=1e-6, abs=1e-9), path.name
        assert row["top1"] == pytest.approx(r.top1_agreement) and row["perplexity"] == pytest.approx(r.perplexity)
    awq_f16 = out / STAGE_FOLDERS["convert"] / "model-f32.gguf"  # the AWQ-scaled model is not the reference
    scaled = evaluate_gguf(base, reference=awq_f16, text=heldout, n_ctx=512, threads=1)
    assert scaled.kl_divergence != pytest.approx(ours[0]["kl"], rel=1e-5)  # the row matched to 1e-6 above

    best = min(theirs, key=lambda r: r["kl"])
    assert metrics["kl_ratio"] == pytest.approx(ours[0]["kl"] / best["kl"])
    quality = load_manifest(out / "bundle").quality["quantization"]["vs_llama_cpp"]
    assert quality["kl_ratio"] == metrics["kl_ratio"] and quality["llama_cpp_best"] == best["label"]
    report = (out / "bundle" / "REPORT.md").read_text()
    assert "### Against llama.cpp's own quantizer at this size" in report
    assert f"| llama.cpp {mixes[0]}, importance matrix | " in report
    assert f"| **ours: the build's base** | {ours[0]['size'] / 1e6:.2f} | {ours[0]['kl']:.4f} |" in report


def test_the_bundle_verifies_and_binds_each_modifier_to_the_quantized_base(built: tuple[Path, Path, list[str]]) -> None:
    from edge_assistant.bundle.manifest import load_manifest
    from edge_assistant.bundle.verify import verify_bundle
    from edge_assistant.hashing import sha256_file

    _recipe, out, _log = built
    bundle = out / "bundle"
    verify_bundle(bundle)
    manifest = load_manifest(bundle)
    base_sha = sha256_file(out / "quantize" / "model-Q8_0.gguf")
    assert manifest.base.sha256 == base_sha and manifest.base.quant_type == "Q8_0"
    assert [m.name for m in manifest.modifiers] == ["code", "automation"]
    assert all(m.base_sha256 == base_sha and m.rank == 4 for m in manifest.modifiers)
    assert manifest.router is not None and (bundle / "router").is_dir()
    assert (bundle / "REPORT.md").is_file()


def test_an_alora_modifier_is_trained_from_the_assistant_opener_and_bundled_as_alora(
        built: tuple[Path, Path, list[str]]) -> None:
    from edge_assistant.bundle.ggufmeta import ALORA_INVOCATION_KEY, read_gguf_info
    from edge_assistant.bundle.manifest import load_manifest

    from .llama_run import hf_tokenizer

    recipe, out, log = built
    manifest = load_manifest(out / "bundle")
    assert {m.name: m.kind for m in manifest.modifiers} == {"code": "lora", "automation": "alora"}
    adapter = out / STAGE_FOLDERS["modifiers"] / "automation"
    tokens = json.loads((adapter / "adapter" / "adapter_config.json").read_text())["alora_invocation_tokens"]
    base_dir = Path(load_recipe(recipe).base.model)
    assert hf_tokenizer(base_dir).decode(tokens) == "<|im_start|>assistant\n"  # the tiny base speaks ChatML
    assert read_gguf_info(out / "bundle" / "modifiers" / "automation.gguf",
                          keep_arrays=True).metadata[ALORA_INVOCATION_KEY] == tokens
    code = json.loads((out / STAGE_FOLDERS["modifiers"] / "code" / "adapter" / "adapter_config.json").read_text())
    assert code.get("alora_invocation_tokens") is None
    assert ALORA_INVOCATION_KEY not in read_gguf_info(out / "bundle" / "modifiers" / "code.gguf").array_lengths
    record = json.loads((out / STAGE_FOLDERS["modifiers"] / "record.json").read_text())["metrics"]["automation"]
    assert record["kind"] == "alora" and record["val_loss_after"] < record["val_loss_before"]
    assert any("modifier automation: aLoRA" in line for line in log)


def test_the_report_shows_the_switch_cost_of_the_bundles_own_modifiers(built: tuple[Path, Path, list[str]]) -> None:
    from edge_assistant.bundle.manifest import load_manifest

    _recipe, out, _log = built
    cost = json.loads((out / STAGE_FOLDERS["evaluate"] / "record.json").read_text())["metrics"]["switch_cost"]
    assert (cost["kind"], cost["x"], cost["ys"]) == ("alora/lora", "code", ["automation", "base"])
    turns = [(t["turn"], t["modifier"]) for t in cost["turns"]]
    assert turns == [("first read", "code"), ("same", "code"), ("switch", "automation"), ("switch back", "code"),
                     ("same", "code"), ("switch", "base"), ("switch back", "code"), ("same", "code")]
    reads = [t["read_tokens"] for t in cost["turns"]]
    assert cost["tokens"] >= 150 and reads[0] == cost["tokens"]
    assert reads[3] < cost["tokens"] / 2 and reads[6] < cost["tokens"] / 2  # back to code: its kept state
    # The base after the aLoRA automation: the prefix they share (up to automation's assistant opener)
    # is reused, so it reads only what came after it, opener included, and skips at least the whole
    # conversation of the first read (how much came after depends on how long the replies were).
    prompts = [t["prompt_tokens"] for t in cost["turns"]]
    assert reads[5] <= prompts[5] - prompts[2] + 8 and prompts[5] - reads[5] >= cost["tokens"]
    report = (out / "bundle" / "REPORT.md").read_text()
    assert "## Switching modifiers" in report and "Kind: **alora/lora**" in report
    assert all(f"| {t['turn']} | {t['modifier']} | {t['read_tokens']} |" in report for t in cost["turns"])
    quality = load_manifest(out / "bundle").quality["switch_cost"]
    assert quality == {"kind": "alora/lora", "tokens": cost["tokens"], "switch_ratio": cost["switch_ratio"],
                       "switch_back_ratio": cost["switch_back_ratio"]}


def test_the_merge_matches_the_adapter_model_and_the_report_records_it(built: tuple[Path, Path, list[str]]) -> None:
    from edge_assistant.bundle.manifest import load_manifest

    _recipe, out, _log = built
    quality = load_manifest(out / "bundle").quality
    merge = json.loads((out / "merge" / "record.json").read_text())["metrics"]
    assert merge["merged_adapter"] and merge["probe_tokens"] > 0
    assert 0 <= quality["merge"]["max_abs_logit_diff"] <= 1e-3
    assert quality["phase1"]["steps"] == 4
    assert quality["phase1"]["val_loss_after"] < quality["phase1"]["val_loss_before"]
    assert (out / "merge" / "model" / "model.safetensors").is_file()


def test_each_modifier_lowers_its_domain_nll_through_llama_cpp(built: tuple[Path, Path, list[str]]) -> None:
    from edge_assistant.bundle.manifest import load_manifest

    _recipe, out, _log = built
    quality = load_manifest(out / "bundle").quality["modifiers"]
    report = (out / "bundle" / "REPORT.md").read_text()
    for name in ("code", "automation"):
        q = quality[name]
        assert q["tokens"] > 0 and q["examples"] == 4
        assert q["modifier_nll"] < q["base_nll"], q  # scored by llama.cpp on the shipped files
        assert f"| {name} |" in report


def test_the_evaluate_stage_leads_with_task_success_on_the_held_out_tasks(built: tuple[Path, Path, list[str]]) -> None:
    from edge_assistant.builder.task_eval import load_tasks
    from edge_assistant.bundle.manifest import load_manifest

    _recipe, out, log = built
    quality = load_manifest(out / "bundle").quality
    for name in ("code", "automation"):
        entry = quality["modifiers"][name]
        assert next(iter(entry)) == "task_success"  # first, before NLL and losses
        ts = entry["task_success"]
        assert ts["tasks"] == 2 and all(0.0 <= ts[k] <= 1.0 for k in ("base", "modifier", "auto"))
    prompts = sum(len(v) for v in load_tasks().values())
    assert quality["router"]["heldout_prompts"] == prompts and 0.0 <= quality["router"]["heldout_accuracy"] <= 1.0
    rows = [json.loads(line) for line in (out / "evaluate" / "tasks.jsonl").read_text().splitlines()]
    assert {(r["domain"], r["column"]) for r in rows} == {
        (d, c) for d in ("code", "automation") for c in ("base", "modifier", "auto")}
    assert all(r["modifier"] == r["domain"] for r in rows if r["column"] == "modifier")
    report = (out / "bundle" / "REPORT.md").read_text()
    assert "| modifier | tasks | base | with modifier | auto | base NLL |" in report
    assert f"of {prompts} hand-written prompts" in report
    assert any(line.startswith("evaluate tasks code: base ") for line in log)


def test_build_evaluate_prints_the_task_success_table_of_a_bundle(built: tuple[Path, Path, list[str]]) -> None:
    import os
    import subprocess
    import sys

    _recipe, out, _log = built
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    args = [sys.executable, "-m", "edge_assistant.cli", "build", "evaluate", str(out / "bundle"),
            "--max-tasks", "2", "--max-tokens", "8"]
    table = subprocess.run(args, env=env, cwd=repo, capture_output=True, text=True, timeout=600)
    assert table.returncode == 0, table.stderr[-2000:]
    lines = table.stdout.splitlines()
    assert lines[0] == "| domain | tasks | base | with modifier | auto |"
    assert [line.split(" | ")[0] for line in lines[2:4]] == ["| code", "| automation"]
    assert "hand-written prompts its fit never saw" in table.stdout
    summary = subprocess.run(args + ["--domain", "code", "--json"], env=env, cwd=repo, capture_output=True,
                             text=True, timeout=600)
    assert summary.returncode == 0, summary.stderr[-2000:]
    data = json.loads(summary.stdout)
    assert list(data["domains"]) == ["code"]
    assert data["domains"]["code"]["tasks"] == 2 and set(data["domains"]["code"]["solved"]) == {"base", "modifier", "auto"}


def test_build_evaluate_names_a_missing_target_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "edge_assistant.cli", "build", "evaluate", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_rerun_skips_every_finished_stage(built: tuple[Path, Path, list[str]]) -> None:
    recipe, out, _log = built
    before = {s: json.loads((out / STAGE_FOLDERS[s] / "record.json").read_text())["finished"] for s in STAGES}
    log: list[str] = []
    run_build(load_recipe(recipe), out, progress=False, log=log.append)
    assert [line for line in log if "skipped" in line] == [
        f"[{s}] unchanged since the last run: skipped" for s in STAGES]
    assert before == {s: json.loads((out / STAGE_FOLDERS[s] / "record.json").read_text())["finished"] for s in STAGES}


def test_a_changed_setting_reruns_only_the_stages_that_depend_on_it(
        built: tuple[Path, Path, list[str]], tiny_llama: Path, router_embedding_dir: Path, tmp_path: Path) -> None:
    _recipe, out, _log = built
    copy = copy_build(out, tmp_path / "out")
    text = tiny_recipe_text(tiny_llama, router_embedding_dir).replace("max_examples = 4", "max_examples = 3")
    recipe = write_recipe(tmp_path, text)
    log: list[str] = []
    run_build(load_recipe(recipe), copy, progress=False, log=log.append)
    ran = [s for s in STAGES if f"[{s}] running" in log]
    assert ran == ["evaluate", "bundle"]
    assert json.loads((copy / "evaluate" / "heldout.json").read_text())["code"]["examples"] == 3


def test_the_runtime_answers_from_the_built_bundle_with_a_modifier(built: tuple[Path, Path, list[str]]) -> None:
    import os
    import subprocess
    import sys

    _recipe, out, _log = built
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", "edge_assistant.cli", "ask", "--bundle", str(out / "bundle"),
                           "--modifier", "code", "--max-tokens", "4", "--temperature", "0", "--threads", "1",
                           "--json", "How do I sort a list?"],
                          env={**os.environ, "PYTHONPATH": str(repo)}, cwd=repo, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout)
    assert answer["modifier"] == "code" and answer["completion_tokens"] >= 1
