"""The generated docs (tools/gen_docs.py) are current, and the hand-written examples name real commands and options."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from edge_assistant.cli import main as cli
from tools import gen_docs

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^ *```[^\n]*\n(.*?)^ *```", re.S | re.M)


def test_the_command_reference_readme_list_and_module_map_are_current() -> None:
    stale = gen_docs.stale(ROOT)
    assert not stale, (f"{', '.join(stale)} no longer match the CLI or the module docstrings: "
                       f"run `{gen_docs.REGENERATE}` and commit the result")


def _commands(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            if not sub.hidden:
                yield from _commands(sub, (*path, name))


def test_the_reference_has_every_command_with_every_option_and_argument() -> None:
    text = (ROOT / gen_docs.COMMANDS_MD).read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## `([^`]+)`\n(.*?)(?=^## |\Z)", text, re.S | re.M))
    for path, command in _commands(cli):
        name = " ".join(("edge-assistant", *path))
        assert name in sections, f"{name} has no section in {gen_docs.COMMANDS_MD}"
        for param in command.params:
            if isinstance(param, click.Argument):
                assert param.human_readable_name in sections[name], (name, param.name)
            elif not param.hidden:
                for opt in param.opts:
                    assert re.search(rf"(^|[\s,/]){re.escape(opt)}\b", sections[name]), (name, opt)


def test_a_module_without_a_docstring_is_named_instead_of_left_out(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text('"""The package."""\n')
    (package / "sub" / "__init__.py").write_text('"""A subpackage.\n\nMore about it."""\n')
    (package / "sub" / "owned.py").write_text('"""What it owns: one thing."""\nX = 1\n')
    (package / "sub" / "bare.py").write_text("X = 1\n")
    with pytest.raises(gen_docs.GenerationError, match=r"sub/bare\.py.*python tools/gen_docs\.py"):
        gen_docs.module_rows(package)
    (package / "sub" / "bare.py").write_text('"""Now documented."""\nX = 1\n')
    assert gen_docs.module_rows(package) == [("pkg/", "The package."), ("sub/", "A subpackage."),
                                             ("sub/bare.py", "Now documented."),
                                             ("sub/owned.py", "What it owns: one thing.")]


@pytest.mark.parametrize(("doc", "summary"), [
    ("One error family. Every message says what to do next.\n\nDetails.",
     "One error family. Every message says what to do next."),
    ("The build stages. Each takes the context, writes into\nits folder and records it.", "The build stages."),
    ("Tokenizer metadata for a GGUF: from a `tokenizer.json`, or copied\nverbatim from a GGUF.\n\nMore.",
     "Tokenizer metadata for a GGUF: from a `tokenizer.json`, or copied verbatim from a GGUF."),
    ("Bundles on a hub: ``pull`` and ``push``.", "Bundles on a hub: `pull` and `push`."),
])
def test_a_wrapped_docstring_summary_is_cut_at_a_sentence_end(doc: str, summary: str) -> None:
    assert gen_docs.docstring_summary(doc) == summary


def test_missing_markers_name_the_file_and_the_lines_to_add() -> None:
    with pytest.raises(gen_docs.GenerationError, match=r"README\.md.*<!-- generated: commands"):
        gen_docs.replace_block("# no markers here\n", "commands", "body\n", "README.md")


def _example_lines(text: str):
    for block in FENCE.findall(text):
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ")
            if line == "edge-assistant" or line.startswith("edge-assistant "):
                yield line


def _example_problem(line: str) -> str | None:
    """What in one example command line the CLI does not have (None: all of it exists)."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote in prose-like synopsis text
        words = line.split("#")[0].split()
    command: click.Command = cli
    for word in words[1:]:
        if word == "|":  # a synopsis listing alternatives: `bundle verify B | info B | list`
            break
        word = word.strip("[]")
        if isinstance(command, click.Group) and not word.startswith("-") and word:
            sub = command.commands.get(word)
            if sub is None and command.name == "build":
                sub = command.commands["run"]  # `build RECIPE.toml` runs a recipe
            if sub is None:
                return f"no command {word!r} under `{command.name}`"
            command = sub
        elif word.startswith("--"):
            name = word.split("=", 1)[0]
            known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}
            if name not in known:
                return f"`{command.name}` has no option {name}"
    return None


def test_every_example_command_in_readme_and_docs_names_real_commands_and_options() -> None:
    problems = [f"{doc.relative_to(ROOT)}: {line!r}: {problem}"
                for doc in DOCS for line in _example_lines(doc.read_text(encoding="utf-8"))
                if (problem := _example_problem(line))]
    assert not problems, "examples that the CLI does not accept (fix the example or the CLI):\n" + "\n".join(problems)


def test_the_example_check_sees_a_wrong_command_and_a_wrong_option() -> None:
    assert _example_problem("edge-assistant ask 'hi' --json --modifier none") is None
    assert _example_problem("edge-assistant build recipes/demo-cpu.toml --out X") is None
    assert "--jsn" in (_example_problem("edge-assistant ask 'hi' --jsn") or "")
    assert "unpack" in (_example_problem("edge-assistant bundle unpack B") or "")
    assert "--until" in (_example_problem("edge-assistant build quantize X --until merge") or "")
