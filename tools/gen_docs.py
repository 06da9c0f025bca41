"""Generated documentation: the command reference, README's command list and docs/design.md's module map.

    python tools/gen_docs.py           # rewrite docs/commands.md and the marked blocks in place
    python tools/gen_docs.py --check   # change nothing; exit 1 naming each stale file

Everything comes from the code itself: the commands, options and help text from the click
parser that ``edge-assistant`` runs (``edge_assistant.cli.main``), the module map from each
module's docstring (its summary line), read with ``ast`` so nothing is imported. A block
between ``<!-- generated: NAME ... -->`` and ``<!-- end generated: NAME -->`` is replaced, the
rest of the file is left as written. tests/unit/test_generated_docs.py fails when a committed
file differs from what this writes. A development tool, not part of the package.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import click

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "python tools/gen_docs.py"
WIDTH = 100  # help text is wrapped at this width whatever the terminal, so the output is stable
PROG = "edge-assistant"
COMMANDS_MD = "docs/commands.md"


class GenerationError(Exception):
    """A source the docs are made from is unusable (no docstring, a marker missing)."""


# -- the CLI ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandDoc:
    path: tuple[str, ...]       # ("bundle", "create"); () for the program itself
    summary: str                # click's short help: the help text's first sentence
    help: str                   # what `--help` prints, wrapped at WIDTH

    @property
    def name(self) -> str:
        return " ".join((PROG, *self.path))

    @property
    def anchor(self) -> str:
        """The heading's anchor as GitHub makes it: `edge-assistant bundle create` -> edge-assistant-bundle-create."""
        return re.sub(r"[^a-z0-9 _-]", "", self.name.lower()).replace(" ", "-")


def walk_commands(command: click.Command, ctx: click.Context | None = None) -> Iterator[CommandDoc]:
    """Every command under ``command`` (itself first), depth first, in the order `--help` lists them."""
    if ctx is None:
        ctx = click.Context(command, info_name=PROG, **{"terminal_width": WIDTH, "max_content_width": WIDTH,
                                                         **command.context_settings})
    path = tuple(c.info_name or "" for c in reversed(list(_lineage(ctx))))[1:]
    yield CommandDoc(path, command.get_short_help_str(limit=WIDTH * 3), command.get_help(ctx).rstrip())
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from walk_commands(sub, click.Context(sub, info_name=name, parent=ctx, **sub.context_settings))


def _lineage(ctx: click.Context) -> Iterator[click.Context]:
    current: click.Context | None = ctx
    while current is not None:
        yield current
        current = current.parent


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_commands(commands: list[CommandDoc]) -> str:
    """docs/commands.md: an index, then each command's `--help`."""
    lines = [f"<!-- Generated from the CLI's own parser by `{REGENERATE}`: do not edit. To change it, edit the",
             "     help in edge_assistant/cli.py and rerun that command. -->",
             "# Command reference", "",
             f"Every `{PROG}` command with exactly what its `--help` prints. `{PROG}` alone starts the chat app;",
             f"`{PROG} build RECIPE.toml` is short for `{PROG} build run RECIPE.toml`. Errors are one line on",
             "stderr naming the next step, with a non-zero exit code.", "",
             "| command | what it does |", "| --- | --- |"]
    lines += [f"| [`{c.name}`](#{c.anchor}) | {_cell(c.summary)} |" for c in commands]
    for c in commands:
        lines += ["", f"## `{c.name}`", "", "```text", c.help, "```"]
    return "\n".join(lines) + "\n"


def render_command_list(commands: list[CommandDoc]) -> str:
    """README's list: one row per command, linked to its entry in docs/commands.md."""
    lines = ["| command | what it does |", "| --- | --- |"]
    lines += [f"| [`{c.name}`]({COMMANDS_MD}#{c.anchor}) | {_cell(c.summary)} |" for c in commands if c.path]
    return "\n".join(lines) + "\n"


# -- the module map -----------------------------------------------------------------------


_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def docstring_summary(doc: str) -> str:
    """The docstring's first line. When that line is wrapped mid-sentence: up to the last sentence it
    finishes, or when it finishes none, up to the end of the sentence it starts."""
    paragraph = [line.strip() for line in doc.strip().split("\n\n")[0].splitlines()]
    first = paragraph[0]
    ends = [m.end() for m in _SENTENCE_END.finditer(first)]
    if not ends or ends[-1] != len(first):
        if ends:
            first = first[: ends[-1]]
        else:
            joined = " ".join(paragraph)
            end = _SENTENCE_END.search(joined, len(first))
            first = joined[: end.end()] if end else joined
    return first.replace("``", "`")


def module_rows(package: Path) -> list[tuple[str, str]]:
    """(path relative to the package, its summary) for every module; a package by its __init__."""
    rows, missing = [], []
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        relative = path.relative_to(package)
        name = f"{relative.parent.as_posix()}/" if path.name == "__init__.py" else relative.as_posix()
        name = f"{package.name}/" if name == "./" else name
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        if not doc or not doc.strip():
            missing.append(str(path))
            continue
        rows.append((name, docstring_summary(doc)))
    if missing:
        raise GenerationError(f"no module docstring in {', '.join(missing)}: start each module with a one-line "
                              "docstring saying what it owns, then rerun " + REGENERATE)
    return sorted(rows, key=lambda row: (row[0] != f"{package.name}/", row[0]))


def render_module_map(package: Path) -> str:
    lines = ["| module | what it owns |", "| --- | --- |"]
    lines += [f"| `{name}` | {_cell(summary)} |" for name, summary in module_rows(package)]
    return "\n".join(lines) + "\n"


# -- files --------------------------------------------------------------------------------


def replace_block(text: str, name: str, body: str, where: str) -> str:
    """``text`` with the lines between the ``name`` markers replaced by ``body``."""
    begin = re.search(rf"^<!-- generated: {re.escape(name)}\b.*-->\n", text, re.M)
    end = re.search(rf"^<!-- end generated: {re.escape(name)} -->$", text, re.M)
    if begin is None or end is None or end.start() < begin.end():
        raise GenerationError(f"{where} lacks the markers of its generated {name!r} block: put the lines "
                              f"'<!-- generated: {name} ({REGENERATE}) -->' and '<!-- end generated: {name} -->' "
                              "where it belongs, then rerun " + REGENERATE)
    return text[: begin.end()] + body + text[end.start():]


def expected(root: Path = ROOT) -> dict[Path, str]:
    """Each generated file's full text as it should be committed."""
    from edge_assistant.cli import main as cli

    commands = list(walk_commands(cli))
    readme, design = root / "README.md", root / "docs" / "design.md"
    return {
        root / COMMANDS_MD: render_commands(commands),
        readme: replace_block(readme.read_text(encoding="utf-8"), "commands", render_command_list(commands),
                              "README.md"),
        design: replace_block(design.read_text(encoding="utf-8"), "module-map",
                              render_module_map(root / "edge_assistant"), "docs/design.md"),
    }


def stale(root: Path = ROOT) -> list[str]:
    """The generated files whose committed text differs from what this would write."""
    return [path.relative_to(root).as_posix() for path, text in expected(root).items()
            if not path.is_file() or path.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1 if any)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from edge_assistant.durable import write_text

    try:
        if args.check:
            out_of_date = stale()
            for name in out_of_date:
                print(f"{name} is stale: run `{REGENERATE}`", file=sys.stderr)
            return 1 if out_of_date else 0
        for path, text in expected().items():
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                write_text(path, text)
                print(f"wrote {path.relative_to(ROOT).as_posix()}")
    except GenerationError as exc:
        print(f"gen_docs: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
