"""Command line: parses arguments, builds objects through factories, prints.

Every user-facing failure is an ``EdgeAssistantError``: printed as one line on
stderr, non-zero exit, never a traceback. Heavy imports (llama.cpp, textual,
torch) happen inside the commands that need them, so ``--help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__, paths
from .errors import EdgeAssistantError, UsageError


class _Group(click.Group):
    """Turn our errors into one line on stderr instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeAssistantError as exc:
            click.echo(f"edge-assistant: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("edge-assistant: interrupted", err=True)
            ctx.exit(130)


def _print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


@click.group(cls=_Group, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="edge-assistant")
@click.pass_context
def main(ctx: click.Context) -> None:
    """A local AI assistant that runs offline. With no command, starts the chat app."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(chat)


@main.command()
@click.option("--bundle", "bundle", default=None, help="Bundle folder or installed bundle name.")
@click.option("--modifier", default=None, help="auto (router), none (base) or a modifier name.")
def chat(bundle: str | None, modifier: str | None) -> None:
    """Chat in the terminal (the default command)."""
    raise UsageError("the chat app is not built yet", hint="use `edge-assistant ask PROMPT` for now")


# --- runtime commands: ask, doctor (runtime) ---


# --- bundle commands: bundle create/verify/info/list (bundle) ---


# --- router commands: route (router) ---


# --- hub commands: pull, bundle push (distribution) ---


def _progress_line(line: str) -> None:
    click.echo(line, err=True)


@main.command()
@click.argument("repo_id")
@click.option("--revision", default=None, help="Branch, tag or commit to pull (default: main).")
def pull(repo_id: str, revision: str | None) -> None:
    """Download a bundle from a model hub, check every file's sha256, install it."""
    from .bundle.hub import pull_bundle

    installed = pull_bundle(repo_id, revision=revision, progress=_progress_line)
    click.echo(str(installed))


@click.command(name="push")
@click.argument("bundle_dir", metavar="B", type=click.Path(path_type=Path))
@click.argument("repo_id")
@click.option("--revision", default=None, help="Branch to commit to (created if missing; default: main).")
@click.option("--private", is_flag=True, help="Create the repository as private.")
def push_command(bundle_dir: Path, repo_id: str, revision: str | None, private: bool) -> None:
    """Check bundle B against its manifest, then upload it to hub repository REPO_ID as one commit."""
    from .bundle.hub import push_bundle

    url = push_bundle(bundle_dir, repo_id, private=private, revision=revision, progress=_progress_line)
    click.echo(url)


# --- serve (server) ---


class _BuildGroup(click.Group):
    """`build RECIPE.toml` runs a recipe; `build <tool> ...` runs one builder tool."""

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().resolve_command(ctx, args)


@main.group(cls=_BuildGroup)
def build() -> None:
    """Build bundles on a GPU box (needs the `build` extra): `build RECIPE.toml` or a tool below."""


# --- build: recipe runner (pipeline) ---


# --- build: convert, quantize, convert-lora (converters) ---


# --- build: awq, eval (compression) ---


@main.command(name="paths")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def paths_command(as_json: bool) -> None:
    """Show where settings, bundles, history and the cache live."""
    locations = {name: str(p) for name, p in paths.all_paths().items()}
    if as_json:
        _print_json(locations)
        return
    width = max(map(len, locations))
    for name, location in locations.items():
        click.echo(f"{name:<{width}}  {location}")
    click.echo(f"(set {paths.HOME_ENV} to keep everything under one folder)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
