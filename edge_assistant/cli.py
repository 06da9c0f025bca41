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


@build.command(name="awq")
@click.argument("hf_dir", type=click.Path(path_type=Path))
@click.option("--calib", "calib", required=True, type=click.Path(path_type=Path),
              help="Calibration text file (never the text you evaluate on).")
@click.option("--type", "qtype", default="Q4_0", show_default=True,
              help="The quantization type the scales are searched for (use the same in `build quantize`).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output HF folder (scaled).")
@click.option("--grid", "n_grid", type=int, default=20, show_default=True, help="Scale exponents tried per group.")
@click.option("--no-clip", is_flag=True, help="Scale only; leave weight ranges unclipped (float model unchanged).")
def build_awq(hf_dir: Path, calib: Path, qtype: str, out: Path, n_grid: int, no_clip: bool) -> None:
    """Activation-aware weight scaling of an HF Llama folder before conversion."""
    from .builder.awq import awq_hf_dir

    def progress(block: int, n_blocks: int, seconds: float) -> None:
        click.echo(f"block {block + 1}/{n_blocks}: {seconds:.1f}s", err=True)

    path = awq_hf_dir(hf_dir, calib, qtype, out, n_grid=n_grid, clip=not no_clip, progress=progress)
    click.echo(f"wrote {path} (scaled for {qtype.upper()}; report in {path / 'awq.json'})")


@build.command(name="eval")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="The f16 GGUF of the same model: adds KL divergence and top-1 agreement.")
@click.option("--text", "text_file", required=True, type=click.Path(path_type=Path),
              help="Held-out text file (not the calibration text).")
@click.option("--ctx", "n_ctx", type=int, default=512, show_default=True, help="Window length in tokens.")
@click.option("--threads", type=int, default=1, show_default=True, help="llama.cpp threads.")
@click.option("--max-tokens", type=int, default=None, help="Score at most this many tokens of the text.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def build_eval(model: Path, reference: Path | None, text_file: Path, n_ctx: int, threads: int,
               max_tokens: int | None, as_json: bool) -> None:
    """Perplexity, KL divergence and top-1 agreement of a GGUF, token by token through llama.cpp."""
    from .builder.evaluate import evaluate_gguf

    if not text_file.is_file():
        raise UsageError(f"text file {text_file} not found", hint="pass --text with a held-out text file")
    result = evaluate_gguf(model, reference=reference, text=text_file.read_text(encoding="utf-8"),
                           n_ctx=n_ctx, threads=threads, max_tokens=max_tokens)
    if as_json:
        _print_json(result.to_dict())
        return
    click.echo(f"perplexity {result.perplexity:.4f} over {result.tokens} tokens ({result.tokens_per_s:.0f} tokens/s)")
    if result.kl_divergence is not None:
        click.echo(f"KL divergence {result.kl_divergence:.5f} nats/token, top-1 agreement {result.top1_agreement:.2%}")


@build.command(name="compress")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--target-size", "target_size", required=True,
              help="Bytes (95000000, 95MB, 90MiB) or bits per weight (4.5bpw).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output .gguf file.")
@click.option("--types", default=None, help="Comma-separated candidate types (default: Q8_0 down to Q2_K).")
@click.option("--text", "text_file", type=click.Path(path_type=Path), default=None,
              help="Held-out text: choose the fitting type by measured perplexity instead of bits per weight.")
@click.option("--threads", type=int, default=1, show_default=True, help="llama.cpp threads.")
def build_compress(src: Path, target_size: str, out: Path, types: str | None, text_file: Path | None,
                   threads: int) -> None:
    """Quantize an f16 GGUF to the best type that fits a size target; print the trade-off table."""
    from .builder.size_target import CANDIDATES, choose_type, parse_target

    target = parse_target(target_size)
    if text_file is not None and not text_file.is_file():
        raise UsageError(f"text file {text_file} not found", hint="pass --text with a held-out text file")
    candidates = tuple(t.strip().upper() for t in types.split(",") if t.strip()) if types else CANDIDATES
    choice = choose_type(src, target, out, types=candidates, threads=threads,
                         eval_text=text_file.read_text(encoding="utf-8") if text_file else None)
    click.echo(choice.table())
    click.echo(f"wrote {choice.path} ({choice.chosen.qtype})")  # type: ignore[union-attr]


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
