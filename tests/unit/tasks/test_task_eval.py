"""run_tasks on scripted replies: the columns count what was solved, auto reuses replies, the router is scored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_assistant.builder.task_eval import Task, format_table, load_tasks, run_tasks
from edge_assistant.errors import BuildError

TASKS = {
    "reasoning": [Task("r1", "reasoning", "Two plus two?", {"answer": 4}),
                  Task("r2", "reasoning", "Ten minus three?", {"answer": 7}),
                  Task("r3", "reasoning", "Six times seven?", {"answer": 42})],
    "automation": [Task("a1", "automation", "Disk free?", {"kind": "command", "program": "df", "flags": ["-h"]})],
    "chat": [Task("c1", "chat", "Hello there!"), Task("c2", "chat", "Tell me a joke.")],
}

# What each "model" answers: the base gets one reasoning task right, the modifier two.
REPLIES = {
    (None, "Two plus two?"): "It is 4.", (None, "Ten minus three?"): "It is 6.", (None, "Six times seven?"): "No idea.",
    ("reasoning", "Two plus two?"): "Answer: 4", ("reasoning", "Ten minus three?"): "Answer: 7",
    ("reasoning", "Six times seven?"): "Answer: 48",
    (None, "Disk free?"): "`df -h`",
}


def test_the_columns_count_the_solved_tasks_and_auto_reuses_replies() -> None:
    calls: list[tuple[str | None, str]] = []

    def generate(prompt: str, modifier: str | None) -> str:
        calls.append((modifier, prompt))
        return REPLIES[(modifier, prompt)]

    # The router sends r1 and r2 to the modifier and r3 to the base; chat prompts stay with the base.
    routes = {"Two plus two?": "reasoning", "Ten minus three?": "reasoning", "Six times seven?": None,
              "Disk free?": None, "Hello there!": None, "Tell me a joke.": "reasoning"}
    report = run_tasks(TASKS, generate, modifiers=["reasoning"], route=routes.__getitem__)
    d = report.domains["reasoning"]
    assert d["solved"] == {"base": 1, "modifier": 2, "auto": 2}
    assert d["base"] == pytest.approx(1 / 3, abs=1e-4) and d["with_modifier"] == pytest.approx(2 / 3, abs=1e-4)
    assert list(report.domains) == ["reasoning"]            # only domains with a modifier
    assert len(calls) == len(set(calls)) == 6                # auto generated nothing new
    # 6 prompts: reasoning ones belong to the modifier, the others to the base; 2 are misrouted.
    assert report.router == {"accuracy": pytest.approx(4 / 6, abs=1e-4), "prompts": 6, "per_label": {
        "reasoning": {"right": 2, "prompts": 3}, "automation (base)": {"right": 1, "prompts": 1},
        "chat (base)": {"right": 1, "prompts": 2}}}
    table = "\n".join(format_table(report))
    assert "| reasoning | 3 | 33% (1) | 67% (2) | 67% (2) |" in table and "66.7% routed right" in table


def test_a_bare_base_is_scored_on_every_domain_without_router() -> None:
    report = run_tasks(TASKS, lambda p, m: REPLIES[(m, p)], modifiers=[])
    assert {k: v["solved"] for k, v in report.domains.items()} == {"reasoning": {"base": 1}, "automation": {"base": 1}}
    assert report.router is None


def _write(folder: Path, name: str, rows: list[object]) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return folder


@pytest.mark.parametrize("name, rows, says", [
    ("reasoning.jsonl", ["{not json"], "not JSON"),
    ("reasoning.jsonl", [{"id": "x", "prompt": "Q?", "check": {"answer": "many"}}], "numeric check.answer"),
    ("code.jsonl", [{"id": "x", "prompt": "Write f", "check": {"entry": "f"}}], "check.entry and check.tests"),
    ("automation.jsonl", [{"id": "x", "prompt": "do", "check": {"kind": "teleport"}}], "automation check is invalid"),
    ("reasoning.jsonl", [{"id": "x", "prompt": "A?", "check": {"answer": 1}},
                         {"id": "x", "prompt": "B?", "check": {"answer": 2}}], "used twice"),
    ("chat.jsonl", [{"id": "c", "prompt": "hi"}], "no held-out tasks"),
])
def test_bad_task_files_fail_with_the_file_and_line(tmp_path: Path, name: str, rows: list[object], says: str) -> None:
    with pytest.raises(BuildError, match=says) as err:
        load_tasks(_write(tmp_path / "tasks", name, rows))
    assert err.value.hint


def test_a_missing_task_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="not found"):
        load_tasks(tmp_path / "absent")
