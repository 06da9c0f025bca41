"""Task success: the share of hand-written held-out tasks a model solves, base alone, with a modifier, via ``auto``.

The tasks live in ``data/heldout_tasks/<domain>.jsonl``, written by hand in
phrasings no ``demo:`` generator produces, so the score measures generalization.
Each line is ``{"id", "prompt", "check"}``; the check depends on the domain:

- ``reasoning``: ``{"answer": 42}`` -- the reply's final number;
- ``code``: ``{"entry": "fn_name", "tests": "assert fn_name(1) == 2"}`` -- run in the sandbox;
- ``automation``: a command spec for ``task_checks.check_command``;
- ``chat``: no check; general prompts that the router should send to the base.

Replies come from the runtime's own ``LlamaEngine`` (the GGUF files that ship),
greedy, at most ``max_tokens`` tokens. ``auto`` asks the bundle's router per
prompt and reuses the base or modifier reply it picks (greedy decoding makes
them identical), so it costs no extra generation unless another modifier wins.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import BuildError
from . import task_checks

TASK_DIR = Path(__file__).parent / "data" / "heldout_tasks"
DOMAINS = ("code", "reasoning", "automation")
CHAT = "chat"   # prompts for the router only: they should go to the base
NONE = "none"   # the router's label for "the base answers"


@dataclass(frozen=True)
class Task:
    id: str
    domain: str
    prompt: str
    check: dict[str, Any] = field(default_factory=dict)


def load_tasks(folder: Path | None = None) -> dict[str, list[Task]]:
    """The held-out tasks per domain (``chat`` included) from ``folder`` (default: the packaged set)."""
    folder = Path(folder) if folder is not None else TASK_DIR
    if not folder.is_dir():
        raise BuildError(f"held-out task folder {folder} not found",
                         hint="pass a folder with code/reasoning/automation/chat .jsonl files, or leave eval.tasks empty")
    tasks: dict[str, list[Task]] = {}
    seen: set[str] = set()
    for domain in (*DOMAINS, CHAT):
        path = folder / f"{domain}.jsonl"
        if not path.is_file():
            continue
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name} line {number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BuildError(f"{where} is not JSON ({exc.msg})", hint="fix or remove that line") from None
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
                raise BuildError(f"{where} has no prompt", hint='each line needs {"id", "prompt", "check"}')
            task = Task(str(row.get("id") or f"{domain}-{number}"), domain, row["prompt"], row.get("check") or {})
            _validate(task, where)
            if task.id in seen:
                raise BuildError(f"{where}: task id {task.id!r} is used twice", hint="give every task its own id")
            seen.add(task.id)
            rows.append(task)
        tasks[domain] = rows
    if not any(tasks.get(d) for d in DOMAINS):
        raise BuildError(f"no held-out tasks in {folder}", hint="add code.jsonl, reasoning.jsonl or automation.jsonl")
    return tasks


def _validate(task: Task, where: str) -> None:
    c = task.check
    if task.domain == "reasoning" and task_checks._to_number(str(c.get("answer", ""))) is None:
        raise BuildError(f"{where}: a reasoning task needs a numeric check.answer", hint='e.g. "check": {"answer": 12}')
    if task.domain == "code" and not (isinstance(c.get("entry"), str) and isinstance(c.get("tests"), str)):
        raise BuildError(f"{where}: a code task needs check.entry and check.tests", hint="name the function and its asserts")
    if task.domain == "automation":
        try:
            task_checks.check_command("", c)
        except (KeyError, ValueError, TypeError, AssertionError) as exc:
            raise BuildError(f"{where}: the automation check is invalid ({exc!r})",
                             hint="see task_checks.check_command for the spec kinds") from None


def solved(task: Task, reply: str, *, timeout_s: float = 10.0) -> bool:
    """Whether ``reply`` solves ``task``."""
    if task.domain == "reasoning":
        return task_checks.check_number(reply, task.check["answer"])
    if task.domain == "code":
        return task_checks.check_code(reply, task.check["entry"], task.check["tests"], timeout_s=timeout_s)
    if task.domain == "automation":
        return task_checks.check_command(reply, task.check)
    raise BuildError(f"task {task.id} of domain {task.domain!r} has no checker", hint="use code, reasoning or automation")


# -- running ----------------------------------------------------------------------

Generate = Callable[[str, "str | None"], str]   # (prompt, modifier or None) -> reply text
Route = Callable[[str], "str | None"]           # prompt -> modifier or None


def engine_generator(engine: Any, max_tokens: int) -> Generate:
    """Greedy replies of one single-turn prompt through a ``LlamaEngine``."""
    from ..runtime.generation import Message
    from ..sampling import SamplingParams

    sampling = SamplingParams(max_tokens=max_tokens, temperature=0.0, top_p=1.0, seed=0, repeat_penalty=1.0)

    def generate(prompt: str, modifier: str | None) -> str:
        gen = engine.generate([Message("user", prompt)], modifier=modifier, sampling=sampling)
        for _ in gen:
            pass
        return gen.result.text

    return generate


@dataclass
class TaskReport:
    domains: dict[str, dict[str, Any]]          # domain -> {tasks, modifier, base, with_modifier, auto, solved}
    router: dict[str, Any] | None               # accuracy on the held-out prompts, or None without a router
    details: list[dict[str, Any]]               # one row per (task, column): id, column, modifier, solved, reply
    max_tokens: int
    seconds: float

    def summary(self) -> dict[str, Any]:
        return {"domains": self.domains, "router": self.router, "max_tokens": self.max_tokens,
                "seconds": round(self.seconds, 1)}


def run_tasks(tasks: Mapping[str, Sequence[Task]], generate: Generate, *, modifiers: Sequence[str],
              route: Route | None = None, domains: Sequence[str] | None = None, max_tasks: int = 0,
              max_tokens: int = 256, timeout_s: float = 10.0,
              log: Callable[[str], None] = lambda line: None) -> TaskReport:
    """Score every domain (the ones with a modifier; all of them when there are none).

    Columns: ``base`` always; ``modifier`` where a modifier is named like the domain; ``auto``
    where there is a router.
    """
    started = time.perf_counter()
    chosen = list(domains) if domains else [d for d in DOMAINS if d in modifiers] or list(DOMAINS)
    cache: dict[tuple[str, str | None], str] = {}
    details: list[dict[str, Any]] = []

    def reply(prompt: str, modifier: str | None) -> str:
        key = (prompt, modifier)
        if key not in cache:
            cache[key] = generate(prompt, modifier)
        return cache[key]

    results: dict[str, dict[str, Any]] = {}
    for domain in chosen:
        todo = list(tasks.get(domain, ()))[: max_tasks or None]
        if not todo:
            continue
        mod = domain if domain in modifiers else None
        columns: dict[str, str | None | Route] = {"base": None}
        if mod:
            columns["modifier"] = mod
        if route is not None and modifiers:
            columns["auto"] = route
        counts = {c: 0 for c in columns}
        for i, task in enumerate(todo, 1):
            for column, how in columns.items():
                used = how(task.prompt) if callable(how) else how
                text = reply(task.prompt, used)
                ok = solved(task, text, timeout_s=timeout_s)
                counts[column] += ok
                details.append({"id": task.id, "domain": domain, "column": column, "modifier": used,
                                "solved": ok, "reply": text})
            if i % 10 == 0 or i == len(todo):
                log(f"tasks {domain}: {i}/{len(todo)} " + ", ".join(f"{c} {n}" for c, n in counts.items()))
        n = len(todo)
        results[domain] = {"tasks": n, "modifier": mod, "solved": counts,
                           **{("with_modifier" if c == "modifier" else c): round(k / n, 4) for c, k in counts.items()}}
    router = router_accuracy(tasks, route, modifiers) if route is not None and modifiers else None
    return TaskReport(results, router, details, max_tokens, time.perf_counter() - started)


def router_accuracy(tasks: Mapping[str, Sequence[Task]], route: Route, modifiers: Sequence[str]) -> dict[str, Any]:
    """Share of held-out prompts routed right: to the domain's modifier if the bundle has one, else to the base."""
    per: dict[str, list[int]] = {}
    total = right = 0
    for domain, rows in tasks.items():
        want = domain if domain in modifiers else None
        for t in rows:
            ok = route(t.prompt) == want
            label = domain if want else f"{domain} (base)"
            per.setdefault(label, [0, 0])
            per[label][0] += ok
            per[label][1] += 1
            total += 1
            right += ok
    return {"accuracy": round(right / total, 4) if total else None, "prompts": total,
            "per_label": {k: {"right": r, "prompts": n} for k, (r, n) in per.items()}}


def format_table(report: TaskReport) -> list[str]:
    """Markdown lines: task success per domain, and the router's accuracy."""
    lines = ["| domain | tasks | base | with modifier | auto |", "|---|---:|---:|---:|---:|"]

    def pct(d: dict[str, Any], key: str) -> str:
        column = "modifier" if key == "with_modifier" else key
        return f"{d[key]:.0%} ({d['solved'][column]})" if key in d else "n/a"

    for domain, d in report.domains.items():
        lines.append(f"| {domain} | {d['tasks']} | {pct(d, 'base')} | {pct(d, 'with_modifier')} | {pct(d, 'auto')} |")
    if report.router:
        r = report.router
        lines += ["", f"Router on {r['prompts']} hand-written prompts its fit never saw: "
                      f"{r['accuracy']:.1%} routed right."]
    return lines


def evaluate_target(target: Path, *, tasks_dir: Path | None = None, domains: Sequence[str] | None = None,
                    max_tasks: int = 0, max_tokens: int = 256, threads: int = 1, context_length: int = 2048,
                    timeout_s: float = 10.0, log: Callable[[str], None] = lambda line: None) -> TaskReport:
    """Task success of a bundle (base, each modifier, its router) or of a bare base GGUF."""
    import dataclasses

    from ..runtime.engine import LlamaEngine
    from ..runtime.factory import open_assistant
    from ..settings import Settings

    tasks = load_tasks(tasks_dir)
    target = Path(target).expanduser()
    if target.is_file():
        engine: Any = LlamaEngine(target, context_length=context_length, threads=threads, batch_threads=threads)
        route = None
        modifiers: Sequence[str] = ()
    else:
        settings = dataclasses.replace(Settings(), bundle=str(target), threads=threads, batch_threads=threads,
                                       context_length=context_length)
        assistant = open_assistant(settings, notify=log)
        engine = assistant.engine
        modifiers = tuple(engine.modifier_names)
        route = (lambda prompt: assistant.route(prompt).modifier) if modifiers else None
    try:
        return run_tasks(tasks, engine_generator(engine, max_tokens), modifiers=modifiers, route=route,
                         domains=domains, max_tasks=max_tasks, max_tokens=max_tokens, timeout_s=timeout_s, log=log)
    finally:
        engine.close()
