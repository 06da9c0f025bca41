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
    ("returns the smallest and the largest number of a list as a tuple", "min_max", "numbers",
     "return min(numbers), max(numbers)", [[3, 9, 1], [7]]),
    ("checks whether all characters of a string are different", "all_unique", "text",
     "return len(set(text)) == len(text)", ["abc", "hello"]),
    ("returns the items two lists have in common, without duplicates, in the order of the first list",
     "common_items", "a, b", "seen = set(b)\n    return [x for x in dict.fromkeys(a) if x in seen]",
     [([1, 2, 2, 3], [2, 3, 4]), (["x"], ["y"])]),
    ("computes the median of a list of numbers", "median", "numbers",
     "s = sorted(numbers)\n    mid = len(s) // 2\n    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2",
     [[5, 1, 3], [4, 1, 2, 3]]),
    ("returns the key whose value is largest in a dictionary", "key_of_max", "d",
     "return max(d, key=d.get)", [{"a": 3, "b": 7}, {"x": 1}]),
    ("removes the None values from a list", "drop_none", "items",
     "return [x for x in items if x is not None]", [[1, None, 2], [None]]),
    ("returns the characters of a string in sorted order as a new string", "sort_chars", "text",
     "return ''.join(sorted(text))", ["banana", "edge"]),
    ("counts how many numbers in a list are even and how many are odd", "even_odd_counts", "numbers",
     "even = sum(1 for n in numbers if n % 2 == 0)\n    return even, len(numbers) - even", [[1, 2, 3, 4, 5], []]),
    ("shortens a string to at most n characters, ending with '...' when it was cut", "truncate", "text, n",
     "return text if len(text) <= n else text[:max(0, n - 3)] + '...'", [("hello world", 8), ("short", 10)]),
    ("returns the Euclidean distance between two points given as (x, y) tuples", "distance", "p, q",
     "return ((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2) ** 0.5", [((0, 0), (3, 4)), ((1, 1), (1, 1))]),
    ("lists every divisor of a positive integer in increasing order", "divisors", "n",
     "return [k for k in range(1, n + 1) if n % k == 0]", [12, 7]),
    ("pads a number with leading zeros to a given width", "zero_pad", "number, width",
     "return str(number).zfill(width)", [(7, 3), (1234, 2)]),
    ("returns the n-th triangular number (1 + 2 + ... + n)", "triangular", "n",
     "return n * (n + 1) // 2", [4, 10]),
    ("swaps upper and lower case of every letter", "swap_case", "text",
     "return ''.join(c.lower() if c.isupper() else c.upper() for c in text)", ["Hello", "eDGE"]),
    ("tells whether a list contains any value more than once", "has_duplicates", "items",
     "return len(set(items)) != len(items)", [[1, 2, 1], ["a", "b"]]),
    ("computes the dot product of two equal-length lists of numbers", "dot", "a, b",
     "return sum(x * y for x, y in zip(a, b))", [([1, 2, 3], [4, 5, 6]), ([], [])]),
    ("returns the position of the smallest element of a non-empty list", "argmin", "numbers",
     "return min(range(len(numbers)), key=numbers.__getitem__)", [[4, 2, 8], [1]]),
    ("removes punctuation characters from a string", "strip_punctuation", "text",
     "import string\n    return ''.join(c for c in text if c not in string.punctuation)", ["Hi, there!", "ok"]),
    ("groups words into a dictionary keyed by their first letter", "group_by_initial", "words",
     "groups = {}\n    for w in words:\n        groups.setdefault(w[0], []).append(w)\n    return groups",
     [["apple", "avocado", "beet"], []]),
    ("checks whether a string holds only decimal digits and is not empty", "only_digits", "text",
     "return text.isdigit()", ["2024", "12a"]),
    ("returns the differences between neighbouring numbers of a list", "neighbour_diffs", "numbers",
     "return [b - a for a, b in zip(numbers, numbers[1:])]", [[1, 4, 9, 16], [5]]),
    ("interleaves two lists element by element, appending what is left of the longer one", "interleave", "a, b",
     "out = []\n    for x, y in zip(a, b):\n        out += [x, y]\n    n = min(len(a), len(b))\n    return out + a[n:] + b[n:]",
     [([1, 2, 3], ["a", "b"]), ([], [1])]),
    ("converts kilometres to miles", "km_to_miles", "km", "return km * 0.621371", [10, 0]),
    ("counts the words in a text that start with a capital letter", "capitalized_words", "text",
     "return sum(1 for w in text.split() if w[:1].isupper())", ["Alice met Bob in paris", "none here"]),
    ("returns the sum of the digits' squares of a non-negative integer", "digit_square_sum", "n",
     "return sum(int(d) ** 2 for d in str(n))", [12, 305]),
    ("keeps only the strings of a list that are longer than k characters", "longer_than", "words, k",
     "return [w for w in words if len(w) > k]", [(["a", "abc", "abcd"], 2), ([], 1)]),
    ("returns a list with every element of the input repeated twice", "double_each", "items",
     "return [x for x in items for _ in range(2)]", [[1, 2], ["a"]]),
    ("checks whether two lists hold the same elements regardless of order", "same_elements", "a, b",
     "return sorted(a) == sorted(b)", [([1, 2, 3], [3, 2, 1]), ([1, 1], [1])]),
    ("returns the number of seconds in h hours, m minutes and s seconds", "to_seconds", "h, m, s",
     "return h * 3600 + m * 60 + s", [(1, 2, 3), (0, 0, 59)]),
    ("returns the list without its first and last element", "middle", "items",
     "return items[1:-1]", [[1, 2, 3, 4], [1, 2]]),
]

# Held out: none of these tasks or names may appear in data/heldout_tasks/code.jsonl (a test checks it).
_FUNCTION_PHRASES = (
    "Write a Python function that {task}.",
    "Can you write Python code for a function `{fname}` that {task}?",
    "I need a Python function which {task}. Please include an example.",
    "What's a clean Python implementation of a function that {task}?",
    "Help me write `{fname}({params})`: it {task}.",
    "How can I write a function in Python that {task}?",
    "python -- {fname}({params}) {task}",
    "Show me Python code for {fname}, which {task}.",
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
    prompt = rng.choice(_FUNCTION_PHRASES).format(task=task, fname=fname, params=params)
    code = f"```python\n{source}```"
    shown = "Examples:\n```python\n" + "\n".join(examples) + "\n```"
    response = rng.choice((
        f"{code}\n\n{shown}",
        f"Here is one way:\n\n{code}\n\nFor example, `{examples[0].split('  #')[0]}` gives {examples[0].split('-> ')[1]}.",
        f"{code}",
        f"`{fname}` {task}:\n\n{code}\n\n{shown}",
        f"Sure! This {'is a one-liner' if body.count(chr(10)) == 0 else 'loops once over the input'}:\n\n{code}",
    ))
    return {"prompt": prompt, "response": textwrap.dedent(response)}


def generate(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    functions = _public_functions()
    rows = []
    for i in range(n):
        if i % 3 != 0:  # two rows in three write a function: the task users ask for most
            rows.append(_function_task(rng, rng.choice(_FUNCTIONS)))
        else:
            rows.append(_doc_task(rng, *rng.choice(functions)))
    return rows
