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


def _settings(**overrides: Any):
    from .settings import load_settings, with_overrides

    return with_overrides(load_settings(), **overrides)


def _unpack_progress():
    """A progress bar for the first-run unpack, when stderr is a terminal."""
    try:
        from .progress import byte_progress
    except ImportError:  # pragma: no cover - progress helper not installed
        return None
    return lambda total: byte_progress("Unpacking base model (first run only)", total)


@main.command()
@click.argument("prompt")
@click.option("--bundle", default=None, help="Bundle folder or installed bundle name.")
@click.option("--modifier", default=None, help="auto (the router decides), none (the base) or a modifier name.")
@click.option("--system", "system", default=None, help="System prompt (default: from settings).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Most tokens to generate.")
@click.option("--temperature", type=click.FloatRange(0, 5), default=None, help="0 is greedy.")
@click.option("--seed", type=int, default=None, help="Sampling seed, for repeatable answers.")
@click.option("--threads", type=click.IntRange(min=0), default=None, help="CPU threads (0: automatic).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object when done.")
def ask(prompt: str, bundle: str | None, modifier: str | None, system: str | None, max_tokens: int | None,
        temperature: float | None, seed: int | None, threads: int | None, as_json: bool) -> None:
    """Answer one PROMPT and exit (PROMPT '-' reads standard input)."""
    from .runtime.factory import open_assistant
    from .runtime.generation import Message, SamplingParams

    if prompt == "-":
        prompt = sys.stdin.read()
    settings = _settings(modifier=modifier, max_tokens=max_tokens, temperature=temperature, seed=seed,
                         threads=threads)
    assistant = open_assistant(settings, bundle, progress=_unpack_progress())
    try:
        system_prompt = settings.system_prompt if system is None else system
        messages = ([Message("system", system_prompt)] if system_prompt else []) + [Message("user", prompt)]
        sampling = SamplingParams(settings.max_tokens, settings.temperature, settings.top_p, settings.seed,
                                  settings.repeat_penalty)
        decision, generation = assistant.reply(messages, override=settings.modifier, sampling=sampling)
        try:
            for piece in generation:
                if not as_json:
                    click.echo(piece, nl=False)
        except KeyboardInterrupt:
            generation.cancel()
            generation.close()
            if not as_json:
                click.echo()
            raise
        result = generation.result
        for notice in result.notices:
            click.echo(f"edge-assistant: {notice}", err=True)
        if as_json:
            _print_json({
                "text": result.text,
                "modifier": result.modifier,
                "route": {"modifier": decision.modifier, "confidence": decision.confidence,
                          "reason": decision.reason},
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "finish_reason": result.finish_reason,
                "ttft_s": round(result.ttft_s, 4),
                "decode_tok_s": round(result.decode_tok_s, 2),
                "dropped_turns": result.dropped_turns,
                "notices": result.notices,
            })
        else:
            click.echo()
    finally:
        assistant.close()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def doctor(as_json: bool) -> None:
    """Check the installation: versions, threads, cache, bundles, free disk."""
    from .doctor import run_checks

    report = run_checks()
    if as_json:
        _print_json(report.to_dict())
    else:
        click.echo(report.to_text())
    if not report.ok:
        sys.exit(1)


# --- bundle commands: bundle create/verify/info/list (bundle) ---


# --- router commands: route (router) ---


@main.command()
@click.argument("prompt", required=False)
@click.option("--bundle", default=None, help="Bundle folder or installed bundle name.")
@click.option("--jsonl", "jsonl", type=click.File("r", encoding="utf-8"), default=None,
              help="Route every line of FILE ('-': standard input): JSON objects with a 'prompt' field.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per prompt.")
def route(prompt: str | None, bundle: str | None, jsonl: Any, as_json: bool) -> None:
    """Show which modifier would answer PROMPT, how sure the router is, and why ('-' reads stdin)."""
    from .router.jsonl import read_prompts
    from .router.source import router_for_bundle

    if (prompt is None) == (jsonl is None):
        raise UsageError("give either a PROMPT or --jsonl FILE",
                         hint="e.g. `edge-assistant route 'fix my python'` or `route --jsonl prompts.jsonl`")
    if jsonl is not None:
        prompts = read_prompts(jsonl, jsonl.name)
    else:
        prompts = [sys.stdin.read() if prompt == "-" else prompt]
    router, _ = router_for_bundle(bundle, _settings())
    for text in prompts:
        decision = router.route(text)
        if as_json or jsonl is not None:
            _print_json({"modifier": decision.modifier, "confidence": decision.confidence,
                         "reason": decision.reason, "latency_ms": decision.latency_ms})
        else:
            click.echo(f"{decision.modifier or 'base'}  {decision.confidence:.2f}  "
                       f"({decision.latency_ms:.2f} ms)  {decision.reason}")


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


@build.command(name="run")
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: build_artifacts/<recipe name>).")
@click.option("--from", "from_stage", default=None, help="Start at this stage (rerun it even if unchanged).")
@click.option("--until", "until_stage", default=None, help="Stop after this stage.")
@click.option("--no-awq", is_flag=True, help="Skip AWQ scaling even if the recipe enables it.")
@click.option("--no-progress", is_flag=True, help="No progress bars (logs only).")
def build_run(recipe: Path, out: Path | None, from_stage: str | None, until_stage: str | None,
              no_awq: bool, no_progress: bool) -> None:
    """Run a build recipe: data, phase1, merge, convert, quantize, modifiers, router, evaluate, bundle."""
    from .builder.pipeline import run_build
    from .builder.recipe import load_recipe

    result = run_build(load_recipe(recipe), out, from_stage=from_stage, until_stage=until_stage,
                       awq=False if no_awq else None, progress=not no_progress,
                       log=lambda line: click.echo(line, err=True))
    click.echo(str(result))


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
