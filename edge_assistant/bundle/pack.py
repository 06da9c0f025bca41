"""Create a bundle: pack the base GGUF with zstd, add modifiers, router and report.

Everything is checked before the long part starts (the base is a GGUF model, each
modifier is a LoRA adapter whose tensors fit the base and that is bound to this
base's sha256), then written into a hidden temp folder next to the output and
renamed into place at the end, so a failed or interrupted create never leaves a
half-written bundle under the final name. The base is streamed through a
multi-threaded zstd compressor, hashing the unpacked input and the packed output
as it goes; no file is ever held in memory whole.
"""

from __future__ import annotations

import errno
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Sequence

import zstandard

from .. import __version__
from ..durable import atomic_folder
from ..errors import BundleError, DiskSpaceError, ModifierError, UsageError
from ..hashing import CHUNK, sha256_file
from ..modifier_names import NAME_RE
from ..progress import ProgressFactory, no_progress
from .adapter import inspect_adapter
from .ggufmeta import BASE_SHA256_KEY, GGUFInfo, read_gguf_info
from .manifest import (BASE_PACKED_NAME, MANIFEST_NAME, MODIFIERS_DIR, REPORT_NAME, ROUTER_DIR,
                       SHA256_RE, BaseEntry, Manifest, ModifierEntry, RouterEntry, validate_modifier_name,
                       write_manifest)

# zstd level: measured on the real SmolLM2 Q4_1 GGUF (benchmarks/bundle_unpack.py),
# quantized weights barely compress past level 3 while higher levels cost several
# times the packing time; decompression speed hardly depends on the level.
DEFAULT_LEVEL = 3


@dataclass(frozen=True)
class ModifierInput:
    """A LoRA adapter GGUF to add to a bundle as ``modifiers/<name>.gguf``.

    ``base_sha256`` binds an adapter that carries no ``edge_assistant.base_sha256``
    key of its own (e.g. converted elsewhere); it must equal the base's sha256.
    """

    name: str
    path: Path
    description: str = ""
    default_scale: float = 1.0
    base_sha256: str | None = None


@dataclass(frozen=True)
class _CheckedModifier:
    spec: ModifierInput
    binding: str
    rank: int
    alpha: float
    kind: str


class _HashingWriter:
    """Hashes and counts the packed bytes on their way to the file."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


def _check_base(base_gguf: Path) -> GGUFInfo:
    if not base_gguf.is_file():
        raise UsageError(f"base model {base_gguf} does not exist", hint="pass --base PATH/TO/MODEL.gguf")
    info = read_gguf_info(base_gguf, tensors=True)
    if info.is_adapter:
        raise BundleError(f"{base_gguf} is a LoRA adapter, not a base model",
                          hint="pass the model as --base and the adapter as --modifier NAME=ADAPTER.gguf")
    if not info.architecture:
        raise BundleError(f"{base_gguf} has no general.architecture",
                          hint="reconvert the model with a current converter")
    if info.context_length is None:
        raise BundleError(f"{base_gguf} has no {info.architecture}.context_length",
                          hint="reconvert the model with a current converter")
    info.check_complete()
    return info


def _check_modifier(spec: ModifierInput, base: GGUFInfo) -> _CheckedModifier:
    validate_modifier_name(spec.name)
    where = f"modifier {spec.name!r} ({spec.path})"
    if not Path(spec.path).is_file():
        raise UsageError(f"{where} does not exist", hint="check the path after NAME=")
    adapter = inspect_adapter(Path(spec.path), base, label=where)
    embedded, claimed = adapter.base_sha256, spec.base_sha256
    if claimed is not None and not SHA256_RE.fullmatch(claimed):
        raise UsageError(f"{where}: base_sha256 {claimed!r} is not a lowercase hex sha256")
    if embedded is None and claimed is None:
        raise ModifierError(
            f"{where} does not say which base it was trained on (no {BASE_SHA256_KEY})",
            hint="reconvert it with `edge-assistant build convert-lora`, or pass --bind-unverified "
                 "if you know it was trained on exactly this base")
    if embedded is not None and claimed is not None and embedded != claimed:
        raise ModifierError(f"{where} is bound to base {embedded[:12]}…, not the {claimed[:12]}… given",
                            hint="drop the explicit binding or use the right adapter")
    binding = embedded if embedded is not None else claimed
    return _CheckedModifier(spec=spec, binding=str(binding), rank=adapter.rank, alpha=adapter.alpha,
                            kind=adapter.kind)


def _copy_hashed(src: Path, dst: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        while chunk := fin.read(CHUNK):
            digest.update(chunk)
            fout.write(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _pack_base(base_gguf: Path, dst: Path, *, level: int, threads: int,
               progress: ProgressFactory) -> tuple[int, str, int, str]:
    """Compress ``base_gguf`` into ``dst``; return (size, sha256, packed_size, packed_sha256)."""
    size = base_gguf.stat().st_size
    digest = hashlib.sha256()
    read = 0
    cctx = zstandard.ZstdCompressor(level=level, threads=threads or -1, write_checksum=True)
    with open(base_gguf, "rb") as fin, open(dst, "xb") as fout:
        out = _HashingWriter(fout)
        with progress(f"packing {base_gguf.name} (zstd -{level})", size) as advance:
            zw = cctx.stream_writer(out, size=size, closefd=False)
            # Not a `with`: after an interrupt, closing would end the frame short of the size it
            # promised and raise a ZstdError in place of the interrupt; the file goes with the temp folder.
            while chunk := fin.read(CHUNK):
                digest.update(chunk)
                zw.write(chunk)
                read += len(chunk)
                advance(len(chunk))
            zw.close()
    if read != size:
        raise BundleError(f"{base_gguf} changed size while it was being packed", hint="run bundle create again")
    return size, digest.hexdigest(), out.size, out.digest.hexdigest()


def _copy_router(router_dir: Path, dst: Path) -> dict[str, str]:
    if not router_dir.is_dir():
        raise UsageError(f"router folder {router_dir} does not exist", hint="pass --router DIR made by the builder")
    files: dict[str, str] = {}
    dst.mkdir()
    for src in sorted(router_dir.rglob("*")):
        rel = src.relative_to(router_dir).as_posix()
        if src.is_symlink():
            raise BundleError(f"router file {src} is a symlink", hint="copy the real file into the router folder")
        if src.is_dir():
            (dst / rel).mkdir(parents=True, exist_ok=True)
        elif src.is_file():
            _, files[rel] = _copy_hashed(src, dst / rel)
    return files


def _check_out_dir(out_dir: Path, force: bool) -> None:
    if not out_dir.exists():
        return
    if not force:
        raise BundleError(f"{out_dir} already exists", hint="choose another --out or pass --force to replace it")
    # --force replaces a bundle, never an arbitrary folder (think `--out ~ --force`).
    if not out_dir.is_dir() or not ((out_dir / MANIFEST_NAME).is_file() or not any(out_dir.iterdir())):
        raise BundleError(f"{out_dir} exists and is not a bundle; --force only replaces bundles",
                          hint="choose another --out")


def create_bundle(base_gguf: Path, out_dir: Path, *, name: str | None = None,
                  modifiers: Sequence[ModifierInput] = (), router_dir: Path | None = None,
                  router_threshold: float | None = None, report: Path | None = None,
                  provenance: dict | None = None, quality: dict | None = None,
                  level: int = DEFAULT_LEVEL, threads: int = 0, force: bool = False,
                  base_package: str | None = None, progress: ProgressFactory | None = None) -> Path:
    """Write a bundle folder at ``out_dir`` and return its path.

    ``base_package`` names the installed Python distribution that ships ``base_gguf``: the
    bundle then refers to the base (package, path inside it, sha256, size) instead of
    carrying a packed copy (bundle/external.py).

    ``threads`` is the number of zstd worker threads (0: one per logical core).
    ``progress`` is a ProgressFactory (e.g. ``edge_assistant.progress.byte_progress``).
    """
    base_gguf, out_dir = Path(base_gguf), Path(out_dir)
    bar = progress or no_progress
    name = name or out_dir.name
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"bundle name {name!r} is not allowed",
                         hint="use --name with lowercase letters, digits, '-', '_' or '.' (at most 64)")
    if not 1 <= level <= 22:
        raise UsageError(f"zstd level {level} is out of range", hint="use --level between 1 and 22")
    if report is not None and not Path(report).is_file():
        raise UsageError(f"report {report} does not exist", hint="pass --report PATH/TO/REPORT.md")
    if router_dir is not None and router_threshold is None:
        raise UsageError("a router needs its threshold", hint="pass the fitted one, RouterConfig.load(dir).threshold")
    _check_out_dir(out_dir, force)
    names = [m.name for m in modifiers]
    if len(set(names)) != len(names):
        raise UsageError("a modifier name is given twice", hint="give each --modifier a different NAME")

    base_info = _check_base(base_gguf)
    external_path = _path_in_package(base_gguf, base_package) if base_package else None
    checked = [_check_modifier(m, base_info) for m in modifiers]
    base_sha = None
    if checked or external_path is not None:
        # Hash first so a wrongly bound adapter fails in seconds, not after a long compression.
        with bar(f"hashing {base_gguf.name}", base_gguf.stat().st_size) as advance:
            base_sha = sha256_file(base_gguf, advance)
        for c in checked:
            if c.binding != base_sha:
                raise ModifierError(
                    f"modifier {c.spec.name!r} ({c.spec.path}) is bound to base {c.binding[:12]}…, "
                    f"but {base_gguf.name} is {base_sha[:12]}…",
                    hint="pass the base it was trained on, or retrain the adapter on this base")

    with _bundle_folder(out_dir, force) as tmp:
        if external_path is not None:
            assert base_sha is not None
            size, sha = base_gguf.stat().st_size, base_sha
        else:
            size, sha, packed_size, packed_sha = _pack_base(base_gguf, tmp / BASE_PACKED_NAME,
                                                            level=level, threads=threads, progress=bar)
        if base_sha is not None and sha != base_sha:
            raise BundleError(f"{base_gguf} changed while it was being packed", hint="run bundle create again")
        entries = []
        if checked:
            (tmp / MODIFIERS_DIR).mkdir()
        for c in checked:
            rel = f"{MODIFIERS_DIR}/{c.spec.name}.gguf"
            msize, msha = _copy_hashed(Path(c.spec.path), tmp / rel)
            entries.append(ModifierEntry(name=c.spec.name, file=rel, sha256=msha, size=msize, base_sha256=sha,
                                         rank=c.rank, alpha=c.alpha, description=c.spec.description,
                                         default_scale=float(c.spec.default_scale), kind=c.kind))
        router = None
        if router_dir is not None:
            files = _copy_router(Path(router_dir), tmp / ROUTER_DIR)
            assert router_threshold is not None
            router = RouterEntry(dir=ROUTER_DIR, threshold=float(router_threshold), files=files)
        if report is not None:
            _copy_hashed(Path(report), tmp / REPORT_NAME)
        record = dict(provenance or {})
        record["bundle_create"] = {
            "edge_assistant": __version__,
            "zstandard": zstandard.__version__,
            "zstd_level": None if external_path else level,
            "base_file": base_gguf.name,
        }
        described = dict(sha256=sha, size=size, arch=str(base_info.architecture),
                         quant_type=base_info.file_type or base_info.dominant_tensor_type() or "unknown",
                         context_length=int(base_info.context_length or 0))
        if external_path is not None:
            base_entry = BaseEntry(**described, package=str(base_package), path=external_path)
        else:
            base_entry = BaseEntry(**described, file=BASE_PACKED_NAME, packed_sha256=packed_sha,
                                   packed_size=packed_size)
        manifest = Manifest(
            name=name,
            base=base_entry,
            modifiers=tuple(entries), router=router, provenance=record, quality=dict(quality or {}),
        )
        write_manifest(tmp, manifest)
    return out_dir


@contextmanager
def _bundle_folder(out_dir: Path, force: bool) -> Iterator[Path]:
    """A temp folder that replaces ``out_dir`` whole when the block ends (``durable.atomic_folder``);
    an OSError on the way is one clear BundleError."""
    try:
        with atomic_folder(out_dir) as tmp:
            yield tmp
            _check_out_dir(out_dir, force)  # it may have appeared while we were packing
    except OSError as exc:
        raise _write_error(exc, out_dir) from exc


def _path_in_package(base_gguf: Path, package: str) -> str:
    """``base_gguf``'s path inside the installed distribution ``package``, as the manifest records it."""
    from .external import distribution_root

    root = distribution_root(package)
    try:
        return base_gguf.resolve().relative_to(root).as_posix()
    except ValueError:
        raise UsageError(f"{base_gguf} is not inside the installed package {package!r} ({root})",
                         hint="pass the .gguf file that package ships as --base") from None


def _write_error(exc: OSError, out_dir: Path) -> BundleError:
    if exc.errno == errno.ENOSPC:
        return DiskSpaceError(f"the disk filled up while writing {out_dir}",
                              hint="free some space or pass --out on a larger disk")
    where = f" ({exc.filename})" if exc.filename else ""
    return BundleError(f"cannot write bundle {out_dir}: {exc.strerror or exc}{where}",
                       hint="check the folder's permissions and free space, then run bundle create again")
