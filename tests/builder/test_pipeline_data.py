"""Training data: assistant-only labels under the chat template, deterministic splits, demo data that is right."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from edge_assistant.builder.dataset import IGNORE_INDEX, read_jsonl, split_rows, tokenize_example
from edge_assistant.builder.demodata import GENERATORS

pytestmark = pytest.mark.builder


@pytest.fixture(scope="module")
def tokenizer():
    from .model_factory import smollm_tokenizer

    return smollm_tokenizer()


def test_only_assistant_tokens_carry_labels_in_every_turn(tokenizer) -> None:
    messages = [{"role": "user", "content": "first question"}, {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "second question"}, {"role": "assistant", "content": "second answer"}]
    ex = tokenize_example(tokenizer, messages, max_len=512)
    learned = tokenizer.decode([t for t, label in zip(ex.input_ids, ex.labels) if label != IGNORE_INDEX])
    assert learned == "first answer<|im_end|>\nsecond answer<|im_end|>\n"
    assert all(label in (IGNORE_INDEX, tok) for tok, label in zip(ex.input_ids, ex.labels))
    ignored = tokenizer.decode([t for t, label in zip(ex.input_ids, ex.labels) if label == IGNORE_INDEX])
    assert "question" in ignored and "answer" not in ignored


def test_truncation_keeps_labels_aligned_with_tokens(tokenizer) -> None:
    messages = [{"role": "user", "content": "q " * 50}, {"role": "assistant", "content": "a " * 50}]
    ex = tokenize_example(tokenizer, messages, max_len=40)
    assert len(ex.input_ids) == len(ex.labels) == 40


def test_the_split_is_deterministic_and_disjoint(tmp_path: Path) -> None:
    rows = [[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}] for i in range(50)]
    a, b = split_rows(rows, 0.2, seed=3), split_rows(list(reversed(rows)), 0.2, seed=3)
    assert len(a.val) == 10 and len(a.train) == 40
    assert sorted(map(str, a.val)) == sorted(map(str, b.val))  # row order does not matter, only content and seed
    assert not {str(r) for r in a.val} & {str(r) for r in a.train}
    assert {str(r) for r in split_rows(rows, 0.2, seed=4).val} != {str(r) for r in a.val}


def test_prompt_response_and_chat_rows_read_the_same(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text('{"prompt": "hi", "response": "hello", "system": "be brief"}\n\n'
                 '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n')
    first, second = read_jsonl(f)
    assert first == [{"role": "system", "content": "be brief"}] + second


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:python|sh|yaml)?\n(.*?)```", text, flags=re.S)


def test_demo_code_functions_produce_the_outputs_their_examples_claim() -> None:
    rows = [r for r in GENERATORS["code"](120, seed=5) if "def " in r["response"]]
    checked = 0
    for row in rows:
        blocks = _code_blocks(row["response"])
        namespace: dict = {}
        exec(blocks[0], namespace)
        claims = [line.split("  # -> ") for b in blocks[1:] for line in b.strip().splitlines()]
        claims += [[call, claimed] for call, claimed in
                   re.findall(r"For example, `(.*?)` gives (.*)\.$", row["response"], flags=re.M)]
        for call, claimed in claims:
            assert eval(call, namespace) == ast.literal_eval(claimed), (row["prompt"], call)
            checked += 1
    assert checked >= 60


def test_demo_code_doc_answers_quote_the_real_signature() -> None:
    import importlib
    import inspect

    rows = [r for r in GENERATORS["code"](120, seed=1) if "def " not in r["response"]]
    assert len(rows) >= 15
    for row in rows:
        head = next(span for span in row["response"].split("`")[1::2] if "(" in span)
        dotted, _, _ = head.partition("(")
        module_name, _, name = dotted.rpartition(".")
        obj = getattr(importlib.import_module(module_name), name)
        assert head == f"{dotted}{inspect.signature(obj)}"


def _final_answer(response: str) -> str:
    """The answer of any of the reasoning styles, without its closing '.' or '**'."""
    m = re.search(r"(?:Answer: |So the answer is |Final answer: )(.*?)\.?\**\s*$", response, flags=re.S)
    assert m, response
    return m.group(1)


def test_demo_reasoning_answers_are_right() -> None:
    checked = 0
    for row in GENERATORS["reasoning"](240, seed=9):
        p, answer = row["prompt"], _final_answer(row["response"])
        if m := re.search(r"\w+ buys (\d+) \w+ at \$(\d+) each and pays with \$(\d+)", p):
            n, price, paid = map(int, m.groups())
            assert answer == f"${paid - n * price}"
        elif m := re.search(r"\w+ has (\d+) \w+ and shares them equally among (\d+)", p):
            total, friends = map(int, m.groups())
            assert answer == f"each friend gets {total // friends}, and {total % friends} are left over"
        elif m := re.search(r"A jacket costs \$(\d+)\. It is on sale for (\d+)% off", p):
            price, pct = map(int, m.groups())
            assert float(answer.strip("$")) == pytest.approx(price * (100 - pct) / 100)
        elif m := re.search(r"A train travels at (\d+) km/h for (\d+) h (\d+) min", p):
            speed, h, mins = map(int, m.groups())
            assert float(answer.split()[0]) == pytest.approx(speed * (h + mins / 60))
        elif "What number comes next" in p:
            terms = [int(x) for x in re.findall(r"\d+", p)]
            assert answer == f"{2 * terms[-1] - terms[-2]}"
        elif m := re.search(r"packs of (\d+)\D+?(\d+)", p):
            size, need = map(int, m.groups())
            assert answer == str(-(-need // size))
        elif m := re.search(r"average over (\d+) games is (\d+) points\. The first \d+ games were ([\d, ]+)\.", p):
            k, mean = int(m[1]), int(m[2])
            assert answer == str(k * mean - sum(int(x) for x in m[3].split(",")))
        elif m := re.search(r"is (\d+) years older than \w+\. In (\d+) years their ages will add up to (\d+)", p):
            gap, years, total = map(int, m.groups())
            assert answer == str((total - 2 * years - gap) // 2 + gap)
        elif " than " in p:
            facts = re.findall(r"(\w+) is \w+ than (\w+)\.", p)
            more = {a for a, _ in facts}
            less = {b for _, b in facts}
            expected = (more - less) if ("tallest" in p or "oldest" in p or "fastest" in p or "heaviest" in p) \
                else (less - more)
            assert {answer} == expected
        else:
            continue
        checked += 1
    assert checked >= 140


def test_demo_cron_lines_match_the_schedule_the_prompt_asks_for() -> None:
    from edge_assistant.builder.task_checks import parse_cron_line

    days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    rows = [r for r in GENERATORS["automation"](200, seed=2) if "crontab -e" in r["response"]]
    assert len(rows) >= 30
    for row in rows:
        blocks = _code_blocks(row["response"])
        line = blocks[0].strip() if blocks else row["response"].split("`")[1]
        parsed = parse_cron_line(line)
        assert parsed is not None, line
        p = row["prompt"]
        if m := re.search(r"(?:every day|daily) at (\d+):(\d\d)", p):
            want = f"{int(m[2])} {int(m[1])} * * *"
        elif m := re.search(r"every (\w+day) at (\d\d):(\d\d)", p):
            want = f"{int(m[3])} {int(m[2])} * * {days.index(m[1])}"
        elif m := re.search(r"(?:every|each) (\d+) min", p):
            want = f"*/{m[1]} * * * *"
        elif m := re.search(r"(?:every hour at minute|hourly,) (\d+)", p):
            want = f"{m[1]} * * * *"
        elif m := re.search(r"on weekdays at (\d\d):(\d\d)", p):
            want = f"{int(m[2])} {int(m[1])} * * 1-5"
        elif m := re.search(r"on day (\d+) of every month at (\d\d):(\d\d)", p):
            want = f"{int(m[3])} {int(m[2])} {m[1]} * *"
        elif m := re.search(r"on (\w+day)s and (\w+day)s at (\d\d):(\d\d)", p):
            want = f"{int(m[4])} {int(m[3])} * * {days.index(m[1])},{days.index(m[2])}"
        elif m := re.search(r"at minute (\d+) of every hour from (\d+):00 to (\d+):00", p):
            want = f"{m[1]} {m[2]}-{m[3]} * * *"
        else:
            pytest.fail(f"unrecognised cron prompt: {p}")
        assert parsed[0] == parse_cron_line(want + " x")[0], (p, line)  # type: ignore[index]


def test_every_generator_is_deterministic_and_offline() -> None:
    for name, generate in GENERATORS.items():
        assert generate(30, seed=7) == generate(30, seed=7), name
        assert all(r["prompt"].strip() and r["response"].strip() for r in generate(30, seed=7))


def test_the_training_benchmark_starts_on_cpu_and_says_so() -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "train_gpu.py"), "--steps", "1",
                           "--variants", "qv,all7", "--rank", "4"],
                          capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                           "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "NOT a GPU figure" in done.stdout
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith(("qv ", "all7 "))]
    assert len(lines) == 2 and "(baseline)" in lines[0]
    # columns: variant [(baseline)], batch, tokens/s, ratio, ...: read tokens/s and ratio before the "x"
    rates = [re.search(r"\s(\d+(?:\.\d+)?)\s+(\d+\.\d+)x\s", ln) for ln in lines]
    assert all(rates), lines
    assert float(rates[0][1]) > 0 and rates[0][2] == "1.00" and float(rates[1][1]) > 0


def test_demo_data_is_the_same_in_every_process() -> None:
    # Stage records hash the data: a generator that differs between processes would retrain
    # modifiers on every build (memory addresses in reprs did exactly that once).
    import subprocess
    import sys

    script = ("import hashlib, json, sys\n"
              "if sys.argv[1] == 'torch': import torch, transformers\n"
              "from edge_assistant.builder.demodata import GENERATORS\n"
              "print(hashlib.sha256(json.dumps({k: g(120, 0) for k, g in GENERATORS.items()}).encode()).hexdigest())")
    root = Path(__file__).resolve().parents[2]
    env = {**__import__("os").environ, "PYTHONPATH": str(root)}
    digests = {subprocess.run([sys.executable, "-c", script, flavour], capture_output=True, text=True, env=env,
                              check=True, timeout=120).stdout for flavour in ("plain", "torch")}
    assert len(digests) == 1
