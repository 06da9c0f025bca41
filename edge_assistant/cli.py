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


@build.command(name="convert")
@click.argument("hf_dir", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output .gguf file.")
@click.option("--outtype", type=click.Choice(["f32", "f16", "bf16", "q8_0"]), default="f16", show_default=True,
              help="Type of the 2-D weights (vectors stay f32).")
@click.option("--source-gguf", type=click.Path(path_type=Path), default=None,
              help="The GGUF the model was loaded from: copy its tokenizer metadata verbatim.")
def build_convert(hf_dir: Path, out: Path, outtype: str, source_gguf: Path | None) -> None:
    """Convert a Hugging Face Llama-family folder (safetensors) to GGUF."""
    from .builder.convert import convert_hf_to_gguf

    path = convert_hf_to_gguf(hf_dir, out, outtype=outtype, source_gguf=source_gguf)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {outtype})")


@build.command(name="quantize")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--type", "qtype", required=True, help="Quantization type, e.g. Q4_K_M, Q4_0, Q8_0.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output .gguf file.")
@click.option("--threads", type=int, default=0, show_default=True, help="Quantizer threads (0: all cores).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def build_quantize(src: Path, qtype: str, out: Path, threads: int, as_json: bool) -> None:
    """Quantize a GGUF with llama.cpp and report per-tensor type fallbacks."""
    from .builder.quantize import quantize_gguf

    report = quantize_gguf(src, out, qtype, threads=threads)
    if as_json:
        _print_json({"path": str(report.path), "qtype": report.qtype, "size": report.size,
                     "bits_per_weight": round(report.bits_per_weight, 4), "tensor_types": report.tensor_types,
                     "fallbacks": [vars(f) for f in report.fallbacks]})
        return
    click.echo(report.summary())
    for fallback in report.fallbacks:
        click.echo(f"  {fallback.tensor}: wanted {fallback.wanted}, got {fallback.got}")


@build.command(name="convert-lora")
@click.argument("peft_dir", type=click.Path(path_type=Path))
@click.option("--base", required=True, type=click.Path(path_type=Path),
              help="The base it was trained on: HF folder or GGUF (a GGUF binds the adapter to its sha256).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output adapter .gguf file.")
def build_convert_lora(peft_dir: Path, base: Path, out: Path) -> None:
    """Convert a PEFT LoRA adapter (safetensors only) to a GGUF adapter."""
    from .builder.lora_convert import convert_lora_to_gguf

    path = convert_lora_to_gguf(peft_dir, base, out)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


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
