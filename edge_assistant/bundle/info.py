"""A human-readable summary of a bundle's manifest, for ``bundle info``."""

from __future__ import annotations

from pathlib import Path

from ..printable import printable
from .manifest import Manifest
from .unpack import cached_base_path


def describe_bundle(folder: Path, manifest: Manifest) -> str:
    base = manifest.base
    if base.is_external:
        lines = [
            f"bundle    {manifest.name}  ({folder})",
            f"base      {base.arch} {base.quant_type}, context {base.context_length}, {base.size / 1e6:.1f} MB, "
            f"external: {base.path} from the Python package {base.package}",
            f"          sha256 {base.sha256}",
        ]
    else:
        cached = cached_base_path(manifest)
        saved = 100 * (1 - base.packed_size / base.size) if base.size else 0.0
        lines = [
            f"bundle    {manifest.name}  ({folder})",
            f"base      {base.arch} {base.quant_type}, context {base.context_length}, "
            f"{base.size / 1e6:.1f} MB unpacked, {base.packed_size / 1e6:.1f} MB packed ({saved:.1f}% saved)",
            f"          sha256 {base.sha256}",
            f"          {'unpacked at ' + str(cached) if cached.is_file() else 'not unpacked yet (first run unpacks it)'}",
        ]
    if manifest.modifiers:
        lines.append("modifiers")
        width = max(len(m.name) for m in manifest.modifiers)
        for m in manifest.modifiers:
            about = f"  {m.description}" if m.description else ""
            lines.append(f"  {m.name:<{width}}  rank {m.rank}, alpha {m.alpha:g}, scale {m.default_scale:g}, "
                         f"{m.size / 1e6:.1f} MB{about}")
    else:
        lines.append("modifiers none (the base answers everything)")
    if manifest.router is not None:
        lines.append(f"router    {manifest.router.dir}/ ({len(manifest.router.files)} files), "
                     f"threshold {manifest.router.threshold:g}")
    else:
        lines.append("router    none")
    for key, value in manifest.provenance.items():
        lines.append(f"provenance.{key}: {value}")
    # Paths and provenance come from outside (the folder name, the manifest): no control characters.
    return "\n".join(printable(line) for line in lines)
