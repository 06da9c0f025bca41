"""Demo data: varied phrasings and answer styles, safe commands, general chat mixed in, held-out sets kept apart."""

from __future__ import annotations

import random
import re

from edge_assistant.builder.demodata import GENERAL_SHARE, automation, chat, code, demo_rows, reasoning
from edge_assistant.builder.task_checks import check_command, final_number, is_destructive, numbers_in
from edge_assistant.builder.task_eval import load_tasks


def test_no_automation_answer_is_destructive_and_deletions_are_bounded_finds() -> None:
    rows = automation.generate(600, 3)
    assert not [r for r in rows if is_destructive(r["response"])]
    deletions = [r for r in rows if re.search(r"\b(delete|remove|purge|clean|wipe|free up)\b", r["prompt"], re.I)
                 and "git" not in r["prompt"] and "systemd" not in r["prompt"]]
    assert len(deletions) > 15
    for r in deletions:
        cmd = "find" if "find " in r["response"] else None
        assert cmd == "find" and "-delete" in r["response"] and re.search(r"-mtime \+\d+|-empty", r["response"]), r


def test_the_generated_old_file_cleanup_passes_the_held_out_checker_shape() -> None:
    # The same checker the evaluation uses accepts the generator's answer to its own request.
    for r in automation.generate(400, 5):
        m = re.fullmatch(r"Delete files older than (\d+) days in (\S+)\.", r["prompt"])
        if m:
            spec = {"kind": "find", "path": m.group(2), "predicates": {"-mtime": f"+{m.group(1)}", "-type": "f"},
                    "action": "delete"}
            assert check_command(r["response"], spec), r


def test_each_domain_has_many_phrasings_and_several_answer_styles() -> None:
    for gen in (automation.generate, code.generate, reasoning.generate):
        rows = gen(400, 0)
        assert len({r["prompt"] for r in rows}) > 250
        openings = {r["response"].split("\n", 1)[0][:12] for r in rows}
        assert len(openings) > 20, gen
    styles = {("Step 1:" in r["response"], "So the answer is" in r["response"], "**Answer:" in r["response"],
               "Final answer:" in r["response"]) for r in reasoning.generate(200, 1)}
    assert len(styles) == 4


def test_code_rows_mostly_write_functions_and_far_more_of_them() -> None:
    rows = code.generate(300, 0)
    defined = {m for r in rows for m in re.findall(r"^def (\w+)\(", r["response"], re.M)}
    assert len(defined) >= 150
    assert sum("def " in r["response"] for r in rows) >= 240
    # A reply that writes no function looks nothing like one that does: no code block, no help() call.
    docs = [r["response"] for r in rows if "def " not in r["response"]]
    assert docs and not any("```" in d for d in docs)


def test_restyled_reasoning_answers_keep_the_computed_final_number() -> None:
    rng = random.Random(0)
    checked = 0
    for kind in reasoning._KINDS:
        for _ in range(10):
            original = kind(rng)["response"]
            answer = original.rsplit("Answer: ", 1)[1]
            want = final_number(answer)
            if want is None or len(numbers_in(answer)) > 1:  # names, sentences, "7 each and 5 left"
                continue
            checked += 1
            for style_seed in range(8):
                restyled = reasoning._restyle(random.Random(style_seed), original)
                assert final_number(restyled) == want, (original, restyled)
    assert checked >= 60


def test_general_chat_is_mixed_into_each_domain() -> None:
    chat_prompts = chat.all_prompts()
    assert {r["prompt"] for seed in range(3) for r in chat.generate(500, seed)} == chat_prompts
    for domain in ("code", "reasoning", "automation"):
        rows = demo_rows(domain, 200, 0)
        assert len(rows) == 200
        general = [r for r in rows if r["prompt"] in chat_prompts]
        assert len(general) == int(200 * GENERAL_SHARE)


def test_held_out_tasks_and_functions_stay_out_of_the_generators() -> None:
    tasks = load_tasks()
    held_out_names = {t.check["entry"] for t in tasks["code"]}
    trained_names = {spec[1] for spec in code.FUNCTIONS}
    assert not held_out_names & trained_names
    generated = {r["prompt"].lower() for gen in (automation.generate, code.generate, reasoning.generate, chat.generate)
                 for r in gen(600, 11)}
    assert not {t.prompt.lower() for rows in tasks.values() for t in rows} & generated


def test_the_router_eval_prompts_are_not_generator_prompts() -> None:
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "data" / "router_eval.jsonl"
    prompts = {json.loads(line)["prompt"].lower() for line in path.read_text().splitlines() if line.strip()}
    generated = {r["prompt"].lower() for gen in (automation.generate, code.generate, reasoning.generate, chat.generate)
                 for r in gen(600, 0)}
    assert len(prompts) >= 100 and not prompts & generated
