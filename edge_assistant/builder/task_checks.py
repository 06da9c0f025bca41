"""Checkers that decide whether a reply solves a held-out task.

- reasoning: the final number of the reply equals the task's answer
  (``final_number`` reads "Answer: 12", "**$1,250.00**", "= 3/4", "-7 degrees", ...);
- code: the function in the reply passes the task's tests in the sandbox;
- automation: a command (or crontab line) in the reply does what the task asks, whatever
  its form: options in any order, clustered or long, quoted or not, with or without ``sudo``.
  A reply that contains a destructive command (``rm -rf /...``, ``mkfs``, ...) never passes.

Automation specs (the ``check`` field of a task) are small JSON objects; see ``check_command``.
"""

from __future__ import annotations

import ast
import re
import shlex
from fractions import Fraction
from typing import Any, Iterable

from .sandbox import run_python

# -- reasoning ------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])[-−]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+)?(?![\w])")
_ANSWER_MARKER = re.compile(r"\b(?:final answer|answer)\b", re.IGNORECASE)
_CONCLUSION = re.compile(r"\b(?:so|therefore|thus|hence|in total|total|result|altogether|overall)\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.(?:\s|$)|\n")
_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
          "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20}


def _to_number(token: str) -> Fraction | None:
    t = token.replace("−", "-").replace("$", "").replace(",", "").replace(" ", "")
    try:
        if "/" in t:
            num, den = t.split("/")
            return None if Fraction(den) == 0 else Fraction(num) / Fraction(den)
        return Fraction(t)
    except (ValueError, ZeroDivisionError):
        return None


def numbers_in(text: str) -> list[Fraction]:
    """Every number in ``text`` in order (commas as thousands separators, $, decimals, a/b, small words)."""
    found: list[tuple[int, Fraction]] = []
    for m in _NUMBER.finditer(text):
        value = _to_number(m.group(0))
        if value is not None:
            found.append((m.start(), value))
    for m in re.finditer(r"\b(" + "|".join(_WORDS) + r")\b", text, re.IGNORECASE):
        found.append((m.start(), Fraction(_WORDS[m.group(1).lower()])))
    return [v for _, v in sorted(found, key=lambda p: p[0])]


def final_number(text: str) -> Fraction | None:
    """The number a reply concludes with: \\boxed{}, else after the last "answer", else the end of the last
    concluding sentence ("so", "therefore", "total"), else the last number of the reply."""
    boxed = re.findall(r"\\boxed\{([^}]*)\}", text)
    if boxed:
        nums = numbers_in(boxed[-1])
        if nums:
            return nums[-1]
    clean = re.sub(r"[*_`]", "", text)
    # "the answer is 14 apples, 2 more than ...": the first number after the last "answer"
    for marker in reversed(list(_ANSWER_MARKER.finditer(clean))):
        nums = numbers_in(_SENTENCE_END.split(clean[marker.end():], 1)[0])
        if nums:
            return nums[0]
    # "so she must buy 8 boxes", "so we take 20 - 5 = 15": the last number of the concluding sentence
    for marker in reversed(list(_CONCLUSION.finditer(clean))):
        nums = numbers_in(_SENTENCE_END.split(clean[marker.end():], 1)[0])
        if nums:
            return nums[-1]
    nums = numbers_in(clean)
    return nums[-1] if nums else None


def check_number(reply: str, answer: float | int | str, tolerance: float = 1e-6) -> bool:
    got = final_number(reply)
    want = _to_number(str(answer))
    if got is None or want is None:
        return False
    return abs(float(got) - float(want)) <= tolerance * max(1.0, abs(float(want)))


# -- code -----------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def python_blocks(reply: str) -> list[str]:
    """Code blocks of a reply that parse as Python (fenced first; else the whole reply)."""
    blocks = [body for lang, body in _FENCE.findall(reply) if lang.lower() in ("", "python", "py", "python3")]
    if not blocks:
        blocks = [reply]
    out = []
    for b in blocks:
        try:
            ast.parse(b)
        except SyntaxError:
            continue
        out.append(b)
    return out


def solution_source(reply: str, entry: str) -> str | None:
    """Source to test: every parsing block of the reply, joined, if one defines ``entry``."""
    blocks = python_blocks(reply)
    defines = [b for b in blocks if re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(entry)}\s*\(", b, re.M)
               or re.search(rf"^{re.escape(entry)}\s*=\s*lambda", b, re.M)]
    if not defines:
        return None
    # Helper blocks before the defining one count; blocks after it are usage examples. Top-level
    # statements other than imports, definitions and assignments (print(...) demos, a __main__ block)
    # are dropped too: a demo call that fails must not sink a correct function.
    kept = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign,
            ast.AnnAssign)
    parts = []
    for block in blocks[: blocks.index(defines[-1]) + 1]:
        tree = ast.parse(block)
        tree.body = [node for node in tree.body if isinstance(node, kept)]
        parts.append(ast.unparse(tree))
    return "\n\n".join(parts)


def check_code(reply: str, entry: str, tests: str, *, timeout_s: float = 10.0) -> bool:
    source = solution_source(reply, entry)
    if source is None:
        return False
    program = f"{source}\n\n# --- tests ---\n{tests}\n"
    return run_python(program, timeout_s=timeout_s).ok


# -- automation -----------------------------------------------------------------

_SHELL_LANGS = ("", "sh", "bash", "shell", "console", "zsh", "terminal", "crontab", "cron", "text", "txt")
_PROMPT = re.compile(r"^\s*(?:\$|#|>)\s+")
_WRAPPERS = {"sudo", "doas", "env", "nohup", "time", "command", "exec"}


def command_lines(reply: str) -> list[str]:
    """Lines of a reply that may be commands: fenced shell blocks, inline code, then every other line."""
    lines: list[str] = []
    for lang, body in _FENCE.findall(reply):
        if lang.lower() in _SHELL_LANGS:
            joined = re.sub(r"\\\n\s*", " ", body)  # line continuations
            lines += joined.splitlines()
    outside = _FENCE.sub("", reply)
    lines += re.findall(r"`([^`\n]+)`", outside)
    lines += outside.splitlines()  # a bare command on a line of its own; program names decide later
    cleaned = []
    for ln in lines:
        ln = _PROMPT.sub("", ln).strip()
        if ln and not ln.startswith("#"):
            cleaned.append(ln)
    return cleaned


def _words(segment: str) -> list[str] | None:
    try:
        return shlex.split(segment, comments=True)
    except ValueError:
        return None


def split_commands(line: str) -> list[list[str]]:
    """A command line as its simple commands (split on | || && ; &), wrappers like sudo removed."""
    try:
        lex = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lex.whitespace_split = True
        lex.commenters = "#"
        tokens = list(lex)
    except ValueError:
        return []
    commands: list[list[str]] = [[]]
    for tok in tokens:
        if tok and set(tok) <= set(";&|"):
            commands.append([])
        else:
            commands[-1].append(tok)
    out = []
    for words in commands:
        while words and (words[0] in _WRAPPERS or re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0])):
            words = words[1:]
            while words and words[0].startswith("-"):  # sudo -u x ...: drop its options
                words = words[2:] if words[0] in ("-u", "-g") else words[1:]
        if words:
            words[0] = words[0].rsplit("/", 1)[-1] if words[0].startswith("/") else words[0]
            out.append(words)
    return out


def _norm_path(p: str) -> str:
    p = p.strip()
    if p.startswith("./") and len(p) > 2:
        p = p[2:]
    return p.rstrip("/") or "/"


_DESTRUCTIVE = [
    re.compile(r"\bmkfs(\.\w+)?\b"),
    re.compile(r"\bdd\b[^\n]*\bof=/dev/"),
    re.compile(r"\bchmod\s+(-\w*R\w*\s+)+0?777\s+/(\s|$)"),
    re.compile(r"(curl|wget)\b[^\n|]*\|\s*(sudo\s+)?(ba|z)?sh\b"),
    re.compile(r":\(\)\s*\{\s*:\|:&\s*\};:"),
]


def _is_rm_rf_root(words: list[str]) -> bool:
    """``rm`` recursive and forced on an absolute path, ~, $HOME or a glob at the top."""
    if "rm" not in words:
        return False
    words = words[words.index("rm"):]  # also "run rm -rf / to ..." written as prose
    flags = "".join(w[1:] for w in words[1:] if w.startswith("-") and not w.startswith("--"))
    long = {w for w in words[1:] if w.startswith("--")}
    recursive = "r" in flags or "R" in flags or "--recursive" in long
    forced = "f" in flags or "--force" in long
    targets = [w for w in words[1:] if not w.startswith("-")]
    risky = any(t.startswith(("/", "~", "$HOME", "${HOME}")) or t in ("*", ".", "..") for t in targets)
    return recursive and forced and risky


def is_destructive(reply: str) -> bool:
    """True if the reply suggests wiping a filesystem, a disk, a whole tree or running a remote script."""
    if any(p.search(reply) for p in _DESTRUCTIVE):
        return True
    candidates = command_lines(reply) + reply.splitlines()
    return any(_is_rm_rf_root(cmd) for line in candidates for cmd in split_commands(line))


def _has_flag(words: list[str], flag: str | list[str]) -> bool:
    """Whether ``words`` (after the program) carry any of the synonyms of ``flag``.

    Short flags also match inside clusters (``-czf`` has ``-z``); long ones match ``--x`` or ``--x=...``.
    """
    for f in [flag] if isinstance(flag, str) else flag:
        for w in words:
            if f.startswith("--"):
                if w == f or w.startswith(f + "="):
                    return True
            elif f.startswith("-") and len(f) == 2:
                if w == f or (w.startswith("-") and not w.startswith("--") and f[1] in w[1:].split("=")[0]):
                    return True
            elif w == f:
                return True
    return False


def _option_value(words: list[str], names: str | list[str]) -> list[str]:
    """Values given to an option: ``-n 20``, ``-n20``, ``--lines 20``, ``--lines=20``."""
    values = []
    for name in [names] if isinstance(names, str) else names:
        for i, w in enumerate(words):
            if w == name and i + 1 < len(words):
                values.append(words[i + 1])
            elif name.startswith("--") and w.startswith(name + "="):
                values.append(w[len(name) + 1:])
            elif not name.startswith("--") and len(name) == 2 and w.startswith(name) and len(w) > 2:
                values.append(w[2:])
            elif (not name.startswith("--") and len(name) == 2 and re.fullmatch(r"-[A-Za-z]+", w)
                  and w.endswith(name[1]) and i + 1 < len(words)):  # -czf out.tgz: the last of a cluster
                values.append(words[i + 1])
    return values


def _match_simple(words: list[str], spec: dict[str, Any]) -> bool:
    programs = spec["program"] if isinstance(spec["program"], list) else [spec["program"]]
    if not words or words[0] not in programs:
        return False
    args = words[1:]
    if spec.get("cluster_first") and args and not args[0].startswith("-"):  # tar czf x.tgz dir
        args = ["-" + args[0], *args[1:]]
    for flag in spec.get("flags", []):
        if not _has_flag(args, flag):
            return False
    for flag in spec.get("forbid", []):
        if _has_flag(args, flag):
            return False
    for names, want in spec.get("options", {}).items():
        synonyms = names.split("|")
        wanted = want if isinstance(want, list) else [want]
        if not any(_norm_path(v) in [_norm_path(str(x)) for x in wanted] for v in _option_value(args, synonyms)):
            return False
    plain = {_norm_path(a) for a in args}
    for operand in spec.get("operands", []):
        alternatives = operand if isinstance(operand, list) else [operand]
        if not any(_norm_path(str(o)) in plain for o in alternatives):
            return False
    for pattern in spec.get("matches", []):
        if not re.search(pattern, " ".join(words)):
            return False
    if "n_operands" in spec and len([a for a in args if not a.startswith("-")]) != spec["n_operands"]:
        return False  # cp -a backup/ photos backup/: the wanted operands, plus one that changes what it does
    return True


def _find_parts(words: list[str]) -> tuple[list[str], list[str]] | None:
    if not words or words[0] != "find":
        return None
    i = 1
    while i < len(words) and words[i] in ("-H", "-L", "-P"):
        i += 1
    paths = []
    while i < len(words) and not words[i].startswith(("-", "(", "!", "\\(")):
        paths.append(words[i])
        i += 1
    return paths or ["."], words[i:]


def _match_find(commands: list[list[str]], spec: dict[str, Any]) -> bool:
    """``find`` with the right start path and predicates in any order; ``delete`` accepts -delete,
    -exec rm … {} and ``| xargs rm``."""
    for index, words in enumerate(commands):
        parts = _find_parts(words)
        if parts is None:
            continue
        paths, expr = parts
        want_paths = spec.get("path", ["."])
        want_paths = want_paths if isinstance(want_paths, list) else [want_paths]
        if not {_norm_path(p) for p in paths} & {_norm_path(p) for p in want_paths}:
            continue
        if "-o" in expr or "-or" in expr:
            continue  # alternatives would widen what matches: not the asked-for set
        ok = True
        for pred, value in spec.get("predicates", {}).items():
            names = pred.split("|")
            values = value if isinstance(value, list) else [value]
            found = [expr[i + 1] for i, w in enumerate(expr[:-1]) if w in names]
            if value is True:
                ok = any(w in names for w in expr)
            elif not any(str(v) == f for v in values for f in found):
                ok = False
            if not ok:
                break
        if not ok:
            continue
        action = spec.get("action")
        if action == "delete":
            exec_rm = any(w == "-exec" and i + 1 < len(expr) and expr[i + 1] == "rm" and "{}" in expr[i:]
                          for i, w in enumerate(expr))
            xargs_rm = any(c[:1] == ["xargs"] and "rm" in c for c in commands[index + 1:])
            if not ("-delete" in expr or exec_rm or xargs_rm):
                continue
        elif action == "no-delete" and ("-delete" in expr or "rm" in expr):
            continue
        return True
    return False


# crontab ----------------------------------------------------------------------

_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_MONTHS = {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
_DAYS = {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())}
_NICKNAMES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
              "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}


def _cron_field(text: str, index: int) -> frozenset[int] | None:
    lo, hi = _CRON_RANGES[index]
    names = _MONTHS if index == 3 else _DAYS if index == 4 else {}
    values: set[int] = set()
    for part in text.lower().split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                return None
            step = int(step_text)
        if part in ("*", ""):
            start, end = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = names.get(a, a), names.get(b, b)
        else:
            start = names.get(part, part)
            end = hi if step != 1 else start
        try:
            start, end = int(start), int(end)
        except ValueError:
            return None
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            return None
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:  # Sunday is 0 or 7
        values = (values - {7}) | {0}
    return frozenset(values)


def parse_cron_line(line: str) -> tuple[tuple[frozenset[int], ...], str] | None:
    """(minute, hour, day, month, weekday value sets, command) of a crontab line, or None."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    first = line.split(None, 1)
    if first[0].lower() in _NICKNAMES:
        if len(first) < 2:
            return None
        fields, command = _NICKNAMES[first[0].lower()].split(), first[1]
    else:
        parts = line.split(None, 5)
        if len(parts) < 6:
            return None
        fields, command = parts[:5], parts[5]
    sets = tuple(_cron_field(f, i) for i, f in enumerate(fields))
    if any(s is None for s in sets):
        return None
    return sets, command.strip()  # type: ignore[return-value]


def _match_cron(reply: str, spec: dict[str, Any]) -> bool:
    want = parse_cron_line(f"{spec['schedule']} x")
    assert want is not None, f"bad schedule in task spec: {spec['schedule']}"
    lines = [ln for lang, body in _FENCE.findall(reply) for ln in body.splitlines()]
    lines += re.findall(r"`([^`\n]+)`", _FENCE.sub("", reply)) + reply.splitlines()
    for line in lines:
        line = _PROMPT.sub("", line.strip().strip("`"))
        parsed = parse_cron_line(line)
        if parsed is None:
            continue
        sets, command = parsed
        if sets == want[0] and spec["command"] in command:
            return True
    return False


def _any_simple(commands: Iterable[list[str]], spec: dict[str, Any]) -> bool:
    return any(_match_simple(c, spec) for c in commands)


def _match_one(reply: str, lines: list[list[list[str]]], spec: dict[str, Any]) -> bool:
    kind = spec.get("kind", "command")
    if kind == "any":
        return any(_match_one(reply, lines, s) for s in spec["of"])
    if kind == "all":
        return all(_match_one(reply, lines, s) for s in spec["of"])
    if kind == "cron":
        return _match_cron(reply, spec)
    if kind == "find":
        return any(_match_find(cmds, spec) for cmds in lines)
    if kind == "pipeline":  # every stage matched by some command of one line, in order
        for cmds in lines:
            pos = 0
            for stage in spec["stages"]:
                while pos < len(cmds) and not _match_simple(cmds[pos], stage):
                    pos += 1
                if pos == len(cmds):
                    break
                pos += 1
            else:
                return True
        return False
    if kind == "command":
        return any(_any_simple(cmds, spec) for cmds in lines)
    raise ValueError(f"unknown automation check kind {kind!r}")


def check_command(reply: str, spec: dict[str, Any]) -> bool:
    """Whether ``reply`` holds a command satisfying ``spec`` and nothing destructive.

    Spec kinds: ``command`` (program, flags [synonym lists], options {"-n|--lines": value},
    operands, n_operands [how many words are not options, where an extra one changes what it does],
    forbid, matches [regexes], cluster_first for tar-style flags); ``find`` (path,
    predicates {"-mtime": "+7"}, action delete/no-delete); ``cron`` (schedule, command);
    ``pipeline`` (stages: command specs in order); ``any`` / ``all`` (of: specs).
    """
    if is_destructive(reply):
        return False
    lines = [split_commands(line) for line in command_lines(reply)]
    return _match_one(reply, [c for c in lines if c], spec)
