"""Check a bundle against its manifest: schema, safe paths, sizes, hashes, bindings.

Cheap checks (schema, paths, presence, sizes, modifier bindings) run before any
file is hashed, so a broken bundle fails in milliseconds. ``deep`` also
decompresses the base (bounded by the manifest's size) and checks the unpacked
sha256; the packed hash is taken in the same read.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import IntegrityError
from ..hashing import sha256_file
from ..printable import printable
from ..progress import ProgressFactory, no_progress
from .manifest import Manifest, load_manifest, safe_relpath
from .stream import decompress_bounded
from .unpack import cached_base_path, cached_copy_state

_REBUILD = "re-download the bundle or rebuild it with `edge-assistant bundle create`"


@dataclass(frozen=True)
class CheckedFile:
    path: str          # relative to the bundle
    size: int
    sha256: str


@dataclass
class VerifyReport:
    bundle_dir: Path
    manifest: Manifest
    deep: bool
    files: list[CheckedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    cached_base: str | None = None   # with check_cache: "absent" or "ok" (a damaged copy raises)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def _size_of(path: Path, rel: str) -> int:
    try:
        if not path.is_file():
            raise FileNotFoundError
        return path.stat().st_size
    except FileNotFoundError:
        raise IntegrityError(f"{rel} is missing from the bundle", hint=_REBUILD) from None


def _expect_size(path: Path, rel: str, expected: int) -> None:
    actual = _size_of(path, rel)
    if actual != expected:
        raise IntegrityError(f"{rel} is {actual} bytes, the manifest says {expected} (truncated or replaced)",
                             hint=_REBUILD)


def _expect_sha(rel: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise IntegrityError(f"{rel} has sha256 {actual[:12]}…, the manifest says {expected[:12]}… (corrupt)",
                             hint=_REBUILD)


def verify_bundle(bundle_dir: str | Path, *, deep: bool = True, check_cache: bool = False,
                  progress: ProgressFactory | None = None) -> VerifyReport:
    """Verify ``bundle_dir``; raise ManifestError or IntegrityError naming the file.

    ``check_cache`` also checks the unpacked base in the user cache, which is what
    actually runs: hashed when ``deep``, else trusted while its stamp says it is unchanged.
    """
    bundle_dir = Path(bundle_dir)
    bar = progress or no_progress
    manifest = load_manifest(bundle_dir)
    report = VerifyReport(bundle_dir=bundle_dir, manifest=manifest, deep=deep)
    base = manifest.base

    for m in manifest.modifiers:
        if m.base_sha256 != base.sha256:
            raise IntegrityError(
                f"modifier {m.name!r} is bound to base {m.base_sha256[:12]}…, "
                f"this bundle's base is {base.sha256[:12]}…",
                hint="retrain the modifier on this base or rebuild the bundle without it")

    # Presence and sizes first: a truncated download fails before anything is hashed.
    if base.is_external:
        from .external import locate_external_base

        external = locate_external_base(manifest)
    else:
        packed = safe_relpath(bundle_dir, base.file, what="base.file")
        _expect_size(packed, base.file, base.packed_size)
    modifier_paths = []
    for m in manifest.modifiers:
        path = safe_relpath(bundle_dir, m.file, what=f"modifier {m.name}")
        _expect_size(path, m.file, m.size)
        modifier_paths.append((m, path))
    router_paths = []
    if manifest.router is not None:
        rdir = manifest.router.dir.rstrip("/")
        for rel in sorted(manifest.router.files):
            full_rel = f"{rdir}/{rel}"
            path = safe_relpath(bundle_dir, full_rel, what="router file")
            router_paths.append((full_rel, path, manifest.router.files[rel], _size_of(path, full_rel)))
        listed = {p for _, p, _, _ in router_paths}
        root = safe_relpath(bundle_dir, rdir, what="router.dir")
        if root.is_dir():
            for extra in sorted(p for p in root.rglob("*") if p.is_file() and p not in listed):
                # safe_relpath resolved the folder: relative to the resolved bundle, whatever path led here.
                rel = extra.relative_to(bundle_dir.resolve()).as_posix()
                report.warnings.append(f"{printable(rel)} is not listed in the manifest")
        else:
            raise IntegrityError(f"{rdir}/ is missing from the bundle", hint=_REBUILD)

    if base.is_external:
        from .external import hash_external_base

        with bar(f"hashing {base.package}:{base.path}", base.size) as advance:
            hash_external_base(manifest, external, advance)
        report.files.append(CheckedFile(f"{base.package}:{base.path}", base.size, base.sha256))
    else:
        _verify_packed(bundle_dir, manifest, report, bar, deep)

    for m, path in modifier_paths:
        _expect_sha(m.file, sha256_file(path), m.sha256)
        report.files.append(CheckedFile(m.file, m.size, m.sha256))
    for full_rel, path, sha, size in router_paths:
        _expect_sha(full_rel, sha256_file(path), sha)
        report.files.append(CheckedFile(full_rel, size, sha))
    if check_cache and not base.is_external:   # an external base runs from its package's file, hashed above
        cached = cached_base_path(manifest)
        with bar(f"checking the unpacked copy {cached.name}", base.size) as advance:
            report.cached_base = cached_copy_state(manifest, trust_stamp=not deep, progress=advance)
        if report.cached_base == "damaged":
            raise IntegrityError(f"the bundle is intact, but its unpacked base in the cache ({cached}) does not "
                                 "match the manifest (damaged)",
                                 hint="the next `ask` or `chat` unpacks it again from the bundle; "
                                      "or delete that file now")
    return report


def _verify_packed(bundle_dir: Path, manifest: Manifest, report: VerifyReport, bar: ProgressFactory,
                   deep: bool) -> None:
    base = manifest.base
    packed = safe_relpath(bundle_dir, base.file, what="base.file")
    if deep:
        packed_digest = hashlib.sha256()
        with bar(f"verifying {base.file}", base.size) as advance:
            try:
                unpacked_sha = decompress_bounded(packed, base.size, progress=advance, packed_digest=packed_digest)
            except IntegrityError:
                # A corrupt packed file is the root cause worth naming, if it is one.
                _expect_sha(base.file, packed_digest.hexdigest(), base.packed_sha256)
                raise
        _expect_sha(base.file, packed_digest.hexdigest(), base.packed_sha256)
        _expect_sha(f"{base.file} (unpacked)", unpacked_sha, base.sha256)
    else:
        with bar(f"hashing {base.file}", base.packed_size) as advance:
            _expect_sha(base.file, sha256_file(packed, advance), base.packed_sha256)
    report.files.append(CheckedFile(base.file, base.packed_size, base.packed_sha256))
