"""Code tasks from the Python standard library itself, and small functions verified by running them."""

from __future__ import annotations

import importlib
import inspect
import random
import textwrap

# Modules whose public functions have stable, well-written docstrings.
_MODULES = ("textwrap", "os.path", "json", "shlex", "statistics", "math", "string", "fnmatch",
            "base64", "itertools", "functools", "heapq", "bisect", "difflib", "glob", "shutil",
            "urllib.parse", "html", "calendar", "random", "operator", "keyword", "zlib", "colorsys")

# (task, function name, parameters, body, test inputs): each body is executed on the inputs and
# its results written into the answer, so every example shown is true.
_FUNCTIONS = [
    ("returns the sum of the squares of a list of numbers", "sum_of_squares", "numbers",
     "return sum(n * n for n in numbers)", [[1, 2, 3], [4, 5]]),
    ("reverses the order of the words in a sentence", "reverse_words", "sentence",
     "return ' '.join(sentence.split()[::-1])", ["hello big world", "one two"]),
    ("counts the vowels in a string", "count_vowels", "text",
     "return sum(1 for ch in text.lower() if ch in 'aeiou')", ["Edge Assistant", "rhythm"]),
    ("checks whether a string is a palindrome, ignoring case and spaces", "is_palindrome", "text",
     "cleaned = ''.join(text.lower().split())\n    return cleaned == cleaned[::-1]", ["Never odd or even", "python"]),
    ("returns the n-th Fibonacci number", "fibonacci", "n",
     "a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a", [10, 20]),
    ("removes duplicates from a list while keeping the first occurrence order", "unique", "items",
     "return list(dict.fromkeys(items))", [[3, 1, 3, 2, 1], ["a", "b", "a"]]),
    ("returns the factorial of n", "factorial", "n",
     "result = 1\n    for k in range(2, n + 1):\n        result *= k\n    return result", [5, 10]),
    ("flattens a list of lists into one list", "flatten", "nested",
     "return [x for inner in nested for x in inner]", [[[1, 2], [3]], [["a"], [], ["b", "c"]]]),
    ("counts how often each word occurs in a text", "word_counts", "text",
     "counts = {}\n    for word in text.lower().split():\n        counts[word] = counts.get(word, 0) + 1\n    return counts",
     ["the cat and the hat", "a a b"]),
    ("returns the largest gap between consecutive sorted numbers", "max_gap", "numbers",
     "s = sorted(numbers)\n    return max((b - a for a, b in zip(s, s[1:])), default=0)", [[1, 9, 4], [5]]),
    ("converts a temperature from Celsius to Fahrenheit", "celsius_to_fahrenheit", "celsius",
     "return celsius * 9 / 5 + 32", [100, -40]),
    ("checks whether a number is prime", "is_prime", "n",
     "if n < 2:\n        return False\n    k = 2\n    while k * k <= n:\n        if n % k == 0:\n            return False\n        k += 1\n    return True",
     [97, 91]),
    ("splits a list into chunks of size k", "chunks", "items, k",
     "return [items[i:i + k] for i in range(0, len(items), k)]", [([1, 2, 3, 4, 5], 2), (["x", "y", "z"], 3)]),
    ("returns the greatest common divisor of two integers", "gcd", "a, b",
     "while b:\n        a, b = b, a % b\n    return abs(a)", [(48, 18), (17, 5)]),
    ("capitalizes the first letter of every word", "title_case", "text",
     "return ' '.join(w[:1].upper() + w[1:] for w in text.split())", ["hello edge world", "python is fun"]),
]


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
    response = (f"`{module}.{name}{sig}`\n\n{summary}\n\n"
                f"Example:\n```python\nimport {module.split('.')[0]}\n"
                f"help({module}.{name})  # full documentation\n```")
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
    prompt = rng.choice([
        f"Write a Python function that {task}.",
        f"Can you write Python code for a function `{fname}` that {task}?",
        f"I need a Python function which {task}. Please include an example.",
    ])
    response = (f"```python\n{source}```\n\nExamples:\n```python\n" + "\n".join(examples) + "\n```")
    return {"prompt": prompt, "response": textwrap.dedent(response)}


def generate(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    functions = _public_functions()
    rows = []
    for i in range(n):
        if i % 3 == 2:
            rows.append(_function_task(rng, rng.choice(_FUNCTIONS)))
        else:
            rows.append(_doc_task(rng, *rng.choice(functions)))
    return rows
