"""Code tasks from the Python standard library itself, and small functions verified by running them."""

from __future__ import annotations

import importlib
import inspect
import random
import textwrap

from .code_functions import FUNCTIONS

# Modules whose public functions have stable, well-written docstrings.
_MODULES = ("textwrap", "os.path", "json", "shlex", "statistics", "math", "string", "fnmatch",
            "base64", "itertools", "functools", "heapq", "bisect", "difflib", "glob", "shutil",
            "urllib.parse", "html", "calendar", "random", "operator", "keyword", "zlib", "colorsys")

# Held out: no prompt of data/heldout_tasks/code.jsonl may come out of these (a test checks it).
_FUNCTION_PHRASES = (
    "Write a Python function that {task}.",
    "Can you write Python code for a function `{fname}` that {task}?",
    "I need a Python function which {task}. Please include an example.",
    "What's a clean Python implementation of a function that {task}?",
    "Help me write `{fname}({params})`: it {task}.",
    "How can I write a function in Python that {task}?",
    "python -- {fname}({params}) {task}",
    "Show me Python code for {fname}, which {task}.",
    "Implement {fname}({params}) in Python so that it {task}.",
    "Could you code up a quick Python helper that {task}?",
    "def {fname}({params}):\n    # TODO: {task}\n\nCan you fill in the body?",
    "I'm learning Python. How do I make a function that {task}?",
    "Need a snippet: a Python function named {fname} that {task}.",
    "Quick one: Python code that {task}, as a function called {fname}.",
    "Write me a small Python def that {task}. Call it {fname}({params}).",
    "{fname}({params}) in Python: it {task}. Just the code.",
    "Please write the function {fname} ({params}) -- it {task}.",
    "Python. Function {fname}. It {task}. Thanks!",
)


def _public_functions() -> list[tuple[str, str, object]]:
    found = []
    for module_name in _MODULES:
        module = importlib.import_module(module_name)
        for name, obj in sorted(vars(module).items()):
            if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isbuiltin(obj)):
                continue
            doc = inspect.getdoc(obj)
            if not doc or len(doc) < 40:
                continue
            try:
                signature = str(inspect.signature(obj))
            except (TypeError, ValueError):  # some C functions have no introspectable signature
                continue
            if "<" in signature:  # a default shown as <function ... at 0x...>: differs per process
                continue
            found.append((module_name, name, obj))
    return found


def _doc_task(rng: random.Random, module: str, name: str, obj: object) -> dict[str, str]:
    sig = str(inspect.signature(obj))  # type: ignore[arg-type]
    doc = inspect.getdoc(obj) or ""
    summary = doc.split("\n\n")[0].replace("\n", " ").strip()
    prompt = rng.choice([
        f"What does `{module}.{name}` do in Python?",
        f"Explain the Python function {module}.{name} and its parameters.",
        f"How do I use {module}.{name}? Show the signature.",
        f"In Python's {module} module, what is `{name}` for?",
    ])
    qualified = f"{module}.{name}"
    # Prose, not a code block: a reply that writes no function must not look like one that does,
    # or the modifier answers "write me f(x)" with a signature and a help() call (9 of 42 held-out
    # code tasks, when these rows ended in one).
    response = rng.choice((
        f"{summary}\n\nSignature: `{qualified}{sig}`. `help({qualified})` prints the full documentation.",
        f"In the `{module}` module: `{qualified}{sig}`. {summary}",
        f"It is `{qualified}{sig}`. {summary}",
    ))
    return {"prompt": prompt, "response": response}


def _function_task(rng: random.Random, spec: tuple) -> dict[str, str]:
    task, fname, params, body, inputs = spec
    source = f"def {fname}({params}):\n    {body}\n"
    namespace: dict[str, object] = {}
    exec(compile(source, f"<demo {fname}>", "exec"), namespace)  # our own table, not user input
    fn = namespace[fname]
    examples = []
    for arg in inputs:
        args = arg if isinstance(arg, tuple) else (arg,)
        shown = ", ".join(repr(a) for a in args)
        examples.append(f"{fname}({shown})  # -> {fn(*args)!r}")  # type: ignore[operator]
    prompt = rng.choice(_FUNCTION_PHRASES).format(task=task, fname=fname, params=params)
    code = f"```python\n{source}```"
    shown = "Examples:\n```python\n" + "\n".join(examples) + "\n```"
    response = rng.choice((
        f"{code}\n\n{shown}",
        f"Here is one way:\n\n{code}\n\nFor example, `{examples[0].split('  #')[0]}` gives {examples[0].split('-> ')[1]}.",
        f"{code}",
        f"`{fname}` {task}:\n\n{code}\n\n{shown}",
        f"Sure! {'A one-liner does it' if body.count(chr(10)) == 0 else 'It takes a few lines'}:\n\n{code}",
    ))
    return {"prompt": prompt, "response": textwrap.dedent(response)}


def generate(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    functions = _public_functions()
    rows = []
    for i in range(n):
        if i % 6 != 0:  # five rows in six write a function: the task users ask for most
            rows.append(_function_task(rng, rng.choice(FUNCTIONS)))
        else:
            rows.append(_doc_task(rng, *rng.choice(functions)))
    return rows
