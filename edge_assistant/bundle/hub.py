"""Bundles on a model hub: ``pull`` (download, check every byte, install) and ``push``.

Pull pins the revision to one commit, then downloads with huggingface-hub into
a staging folder under the data dir (``downloads/<owner>--<name>/<commit>``)
exactly the files the manifest names, keeping partial files there so that a
rerun after a dropped connection resumes with a Range request. The hub client
checks sizes only, so every file is then hashed against the manifest; a file
with the wrong bytes is deleted (a rerun fetches it again) and nothing is
installed. The full bundle check (``verify_bundle``, deep) runs next, reusing
those hashes (each file is read once; the packed base is hashed in the read that
decompresses it), and only then is the folder renamed to ``bundles/<name>``:
there is never a half-written bundle under its final name. One pull per repository runs at a time (a lock).

Offline (``HF_HUB_OFFLINE=1``) nothing is downloaded: a bundle already installed
from the same repository is checked and used; else one in huggingface-hub's own
cache (``hf download``, a copied HF_HOME) goes through the same checks and is
installed; else the error says what to do.

The hub client reads ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` once, when it is
first imported; this module reads both at call time and passes them on, so a
long-lived process sees changes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .. import paths
from ..document import loads_json
from ..durable import atomic_folder, fsync_tree, move_file, swap_folder, write_text
from ..errors import BundleError, DiskSpaceError, HubError, IntegrityError, ManifestError, UsageError
from ..hashing import hash_once
from .contents import FileProblem, PromisedFile, check_file, check_files, promised_files, shipped_names
from .hub_errors import Say, translated
from .manifest import BUNDLE_NAME_RE, MANIFEST_NAME, Manifest, load_manifest

SOURCE_NAME = ".hub-source.json"   # inside an installed bundle: the repository and commit it came from
PARTIAL_DIR = ".partial"            # inside a staging folder: downloads a dropped connection cut short
PARTIAL_SUFFIX = ".part"            # a partial download under PARTIAL_DIR
MAX_MANIFEST_BYTES = 8 << 20        # manifest.json: a few KB in practice
MAX_UNSIZED_BYTES = 1 << 30         # a router file, whose size the manifest does not state
# The hub's own rule (fullmatch): each part starts with a letter or digit and ends with one or '_'.
_REPO_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
_REPO_ID_RE = re.compile(f"{_REPO_PART}/{_REPO_PART}")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "true", "yes", "on"}

Progress = Callable[[str], None]


@dataclass(frozen=True)
class HubSource:
    """Where an installed bundle was pulled from (``.hub-source.json``)."""

    repo_id: str
    revision: str
    commit: str
    endpoint: str


def hub_offline() -> bool:
    """True when the user asked the hub client to stay offline."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def _endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def _check_repo_id(repo_id: str) -> None:
    if not _REPO_ID_RE.fullmatch(repo_id) or ".." in repo_id or "--" in repo_id:
        raise UsageError(f"{repo_id!r} is not a hub repository id",
                         hint="write it as OWNER/NAME, e.g. `edge-assistant pull my-org/my-bundle`")


def _say(progress: Progress | None, line: str) -> None:
    if progress is not None:
        progress(line)


def _human(size: int | None) -> str:
    if size is None:
        return "size unknown"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


# --- installed bundles ----------------------------------------------------------------------


def read_source(bundle_dir: Path) -> HubSource | None:
    """The hub origin recorded in an installed bundle, or None for bundles not pulled from a hub."""
    try:
        data = loads_json((bundle_dir / SOURCE_NAME).read_text(encoding="utf-8"))
        return HubSource(repo_id=str(data["repo_id"]), revision=str(data["revision"]),
                         commit=str(data["commit"]), endpoint=str(data.get("endpoint", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_source(bundle_dir: Path, source: HubSource) -> Path:
    return write_text(bundle_dir / SOURCE_NAME, json.dumps(source.__dict__, indent=2) + "\n")


def installed_from(repo_id: str, dest_root: Path, revision: str | None = None) -> Path | None:
    """The installed bundle that was pulled from ``repo_id`` (at ``revision`` when given)."""
    if not dest_root.is_dir():
        return None
    for candidate in sorted(dest_root.iterdir()):
        if candidate.name.startswith(".") or not candidate.is_dir():
            continue
        source = read_source(candidate)
        if source is None or source.repo_id.lower() != repo_id.lower():
            continue
        if revision is None or revision in (source.revision, source.commit):
            return candidate
    return None


def _problems_text(problems: list[FileProblem]) -> str:
    return "; ".join(f"{p.path}: {p.detail}" for p in problems)


def _use_installed(bundle_dir: Path, repo_id: str, progress: Progress | None) -> Path:
    manifest = load_manifest(bundle_dir)
    problems = check_files(bundle_dir, manifest)
    if problems:
        raise IntegrityError(
            f"installed bundle {bundle_dir} (from {repo_id}) is damaged: {_problems_text(problems)}",
            hint=f"delete {bundle_dir} and run `edge-assistant pull {repo_id}` while online")
    _say(progress, f"{manifest.name}: installed copy of {repo_id} verified ({bundle_dir})")
    return bundle_dir


# --- pull --------------------------------------------------------------------------------------


def pull_bundle(repo_id: str, *, revision: str | None = None, dest_root: str | Path | None = None,
                progress: Progress | None = None) -> Path:
    """Download a bundle from a hub repository, check every file, install it; return its folder."""
    _check_repo_id(repo_id)
    root = Path(dest_root) if dest_root is not None else paths.bundles_dir()
    if hub_offline():
        installed = installed_from(repo_id, root, revision)
        if installed is not None:
            _say(progress, "offline (HF_HUB_OFFLINE=1): using the installed copy")
            return _use_installed(installed, repo_id, progress)
        cached = _from_hub_cache(repo_id, revision, root, progress)
        if cached is not None:
            return cached
        wanted = f"{repo_id}@{revision}" if revision else repo_id
        raise HubError(
            f"bundle {wanted} is neither installed nor in the hub cache, and HF_HUB_OFFLINE=1 forbids downloading it",
            hint=(f"connect once and run `edge-assistant pull {repo_id}` without HF_HUB_OFFLINE, "
                  "or copy a bundle folder to this machine and pass it with --bundle PATH"))

    endpoint = _endpoint()
    wanted_revision = revision or "main"
    commit = _resolve_commit(repo_id, wanted_revision, endpoint)
    installed = installed_from(repo_id, root, commit)
    if installed is not None:
        _say(progress, f"{repo_id}@{commit[:12]} is already installed; checking it")
        return _use_installed(installed, repo_id, progress)

    with _pull_lock(repo_id):
        return _pull_commit(repo_id, wanted_revision, commit, root, endpoint, progress)


def _from_hub_cache(repo_id: str, revision: str | None, root: Path, progress: Progress | None) -> Path | None:
    """Install the bundle from huggingface-hub's own cache (``hf download``, a copied HF_HOME).

    None when the cache does not hold its manifest; an error when it holds only part of it.
    """
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, MANIFEST_NAME, revision=revision or "main")
    if not isinstance(found, str):
        return None
    snapshot = Path(found).parent                 # <cache>/models--owner--name/snapshots/<commit>
    commit = snapshot.name
    _say(progress, f"offline (HF_HUB_OFFLINE=1): installing {repo_id}@{commit[:12]} from the hub cache")
    with _pull_lock(repo_id):
        staging = _staging_dir(repo_id, commit)
        shutil.copyfile(found, staging / MANIFEST_NAME)
        manifest = _load_staged_manifest(staging, repo_id)
        _check_name_free(root / manifest.name, repo_id)
        files = promised_files(manifest)
        _check_space(staging, sum(f.size or 0 for f in files))
        for promised in files:
            cached = try_to_load_from_cache(repo_id, promised.path, revision=commit)
            if not isinstance(cached, str):
                raise HubError(f"the hub cache holds only part of {repo_id}@{commit[:12]} ({promised.path} is missing)",
                               hint=f"connect once and run `edge-assistant pull {repo_id}` without HF_HUB_OFFLINE")
            target = staging / promised.path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cached, target)       # follows the cache's symlink to its blob
        return _check_and_install(staging, root, manifest, files, progress,
                                  HubSource(repo_id=repo_id, revision=revision or "main", commit=commit,
                                            endpoint="hub cache"))


@contextmanager
def _pull_lock(repo_id: str) -> Iterator[None]:
    """One pull of a repository at a time: two would append to the same partial files."""
    from filelock import FileLock, Timeout

    folder = paths.data_dir() / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{repo_id.replace('/', '--')}.lock"
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise HubError(f"another `edge-assistant pull {repo_id}` is running",
                       hint=f"wait for it to finish (its lock is {path})") from None
    try:
        yield
    finally:
        lock.release()


def _pull_commit(repo_id: str, wanted_revision: str, commit: str, root: Path, endpoint: str,
                 progress: Progress | None) -> Path:
    staging = _staging_dir(repo_id, commit)
    _say(progress, f"pulling {repo_id}@{wanted_revision} (commit {commit[:12]}) from {endpoint}")
    _download(repo_id, MANIFEST_NAME, commit, staging, endpoint, limit=MAX_MANIFEST_BYTES)
    manifest = _load_staged_manifest(staging, repo_id)
    _check_name_free(root / manifest.name, repo_id)
    files = promised_files(manifest)
    _check_space(staging, sum(f.size or 0 for f in files))
    for promised in files:
        _say(progress, f"  {promised.path} ({_human(promised.size)})")
        _download(repo_id, promised.path, commit, staging, endpoint,
                  size=promised.size, limit=promised.size if promised.size is not None else MAX_UNSIZED_BYTES)
    return _check_and_install(staging, root, manifest, files, progress,
                              HubSource(repo_id=repo_id, revision=wanted_revision, commit=commit, endpoint=endpoint))


def _load_staged_manifest(staging: Path, repo_id: str) -> Manifest:
    try:
        manifest = load_manifest(staging)
        _check_bundle_name(manifest, repo_id)
        _check_own_names(manifest, repo_id)
    except ManifestError:
        (staging / MANIFEST_NAME).unlink(missing_ok=True)   # a rerun must not trust it either
        raise
    return manifest


@hash_once()
def _check_and_install(staging: Path, root: Path, manifest: Manifest, files: list[PromisedFile],
                       progress: Progress | None, source: HubSource) -> Path:
    """Hash every staged file against the manifest, run the deep check, then install.

    Each file is read once: the deep check reuses the hashes taken here (``hash_once``), and
    it hashes the packed base itself, in the same read that decompresses it.
    """
    where = f"{source.repo_id}@{source.commit[:12]}"
    packed = None if manifest.base.is_external else manifest.base.file
    problems = _bad_files(staging, [f for f in files if f.path != packed])
    if problems:
        # Nothing is installed anyway: check the base too, so that one rerun fetches every bad file.
        problems += _bad_files(staging, [f for f in files if f.path == packed])
    else:
        try:
            _verify_deep(staging, where, "nothing was installed; ask the bundle's publisher to rebuild it")
        except IntegrityError:
            problems = _bad_files(staging, [f for f in files if f.path == packed])
            if not problems:
                raise   # the packed base is the published one: the bundle itself is broken
    if problems:
        bad = ", ".join(p.path for p in problems)
        raise IntegrityError(
            f"{where}: {_problems_text(problems)}; deleted {bad}, nothing was installed",
            hint=(f"run `edge-assistant pull {source.repo_id}` again; if the same file fails again, "
                  "the copy on the hub is damaged: ask the bundle's publisher to push it again"))
    target = _install(staging, root, manifest, source)
    _say(progress, f"{manifest.name}: {len(files)} files verified, installed in {target}")
    return target


def _bad_files(staging: Path, files: list[PromisedFile]) -> list[FileProblem]:
    """The files that are not byte for byte the promised ones; each is deleted, so that a rerun
    fetches it again instead of trusting its size."""
    problems = []
    for promised in files:
        problem = check_file(staging, promised)
        if problem is not None:
            (staging / promised.path).unlink(missing_ok=True)
            problems.append(problem)
    return problems


def _verify_deep(folder: Path, what: str, next_step: str) -> None:
    """The bundle checks beyond file hashes: the unpacked base's sha256, modifier bindings."""
    from .verify import verify_bundle

    try:
        verify_bundle(folder, deep=True)
    except BundleError as exc:
        raise type(exc)(f"{what}: {exc.message}", hint=next_step) from exc


def _resolve_commit(repo_id: str, revision: str, endpoint: str) -> str:
    """Pin the revision to one commit first, so that every file comes from the same commit."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(repo_id, MANIFEST_NAME, revision=revision, endpoint=endpoint)
    with translated(
            revision=Say(HubError, f"{repo_id} has no revision {revision!r}",
                         "check the branch, tag or commit name (leave out --revision for main)"),
            repository=Say(HubError, f"repository {repo_id} was not found on {endpoint}",
                           "check the name; for a private repository log in (`hf auth login`) or set HF_TOKEN"),
            entry=Say(HubError, f"{repo_id} is not an edge-assistant bundle (it has no {MANIFEST_NAME})",
                      "pull a repository that `edge-assistant bundle push` published"),
            transport=Say(HubError, lambda why: f"cannot reach {endpoint} to look up {repo_id} ({why})",
                          "check the connection (and HF_ENDPOINT) and run the same command again")):
        meta = get_hf_file_metadata(url, endpoint=endpoint, retry_on_errors=True)
    if not meta.commit_hash or not _COMMIT_RE.fullmatch(meta.commit_hash):
        raise HubError(f"{endpoint} did not say which commit {repo_id}@{revision} is",
                       hint="check that HF_ENDPOINT points at a Hugging Face compatible hub")
    return meta.commit_hash


class _Oversize(Exception):
    """The hub sent more bytes than the manifest allows for a file."""


class _CappedFile:
    """A file that refuses to grow past ``limit`` bytes: the download stops at the manifest's
    size instead of trusting the hub's (a 4 KB entry must not fetch 40 MB before failing)."""

    def __init__(self, handle: Any, limit: int) -> None:
        self._handle = handle
        self._limit = limit

    def write(self, data: bytes) -> int:
        if self._handle.tell() + len(data) > self._limit:
            raise _Oversize()
        return self._handle.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def _download(repo_id: str, filename: str, commit: str, staging: Path, endpoint: str, *,
              size: int | None = None, limit: int) -> Path:
    """Fetch one file into ``staging``, appending to a partial file a dropped connection left.

    huggingface-hub resumes within one call (Range, five tries) but deletes its
    partial file when it gives up; for bundles of several GB a rerun must not
    start again from zero, so the partial file here is ours:
    ``.partial/<path>.<etag>.part``, named by the file's ETag so that bytes of
    another version are never appended to.
    """
    from urllib.parse import urlsplit

    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    target = staging / filename
    if target.is_file():
        return target   # fetched by an earlier run of this commit; the sha256 check follows anyway
    part: Path | None = None

    def kept() -> str:
        return _human(part.stat().st_size if part is not None and part.is_file() else 0)

    failures = translated(
        entry=Say(IntegrityError, f"{repo_id}@{commit[:12]} lacks {filename}, which its manifest lists",
                  "ask the bundle's publisher to push the bundle again"),
        refused=Say(HubError, lambda why: f"the hub refused {filename} of {repo_id} ({why})",
                    "check access to the repository and run the same command again"),
        transport=Say(HubError, lambda why: f"the connection dropped while downloading {filename} from {repo_id}"
                                            f" ({why}; {kept()} kept)",
                      f"run `edge-assistant pull {repo_id}` again when the connection is back: it resumes"))
    try:
        with failures:
            meta = get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=commit, endpoint=endpoint),
                                        endpoint=endpoint, retry_on_errors=True)
            etag = re.sub(r"[^A-Za-z0-9_.-]", "_", meta.etag or "no-etag")
            part = staging / PARTIAL_DIR / f"{filename}.{etag}{PARTIAL_SUFFIX}"
            part.parent.mkdir(parents=True, exist_ok=True)
            if meta.size is not None and part.is_file() and part.stat().st_size > meta.size:
                part.unlink()   # longer than the file itself: not a prefix of it, start again
            if meta.size is not None and (meta.size > limit or (size is not None and meta.size != size)):
                raise IntegrityError(
                    f"{repo_id}@{commit[:12]}: the hub says {filename} is {meta.size} bytes, "
                    f"{'the manifest says ' + str(size) if size is not None else 'over the limit of ' + str(limit)}; "
                    "nothing was downloaded or installed",
                    hint="ask the bundle's publisher to push the bundle again")
            headers = build_hf_headers()
            headers["Accept-Encoding"] = "identity"   # byte ranges of a compressed stream would not line up
            if urlsplit(meta.location).netloc != urlsplit(endpoint).netloc:
                headers.pop("authorization", None)    # a signed CDN address: never send the token elsewhere
            with open(part, "ab") as f:
                http_get(meta.location, _CappedFile(f, limit), resume_size=f.tell(), headers=headers,
                         expected_size=meta.size, displayed_filename=filename)
                f.flush()
                os.fsync(f.fileno())
    except _Oversize:
        if part is not None:
            part.unlink(missing_ok=True)
        raise IntegrityError(f"{repo_id}@{commit[:12]}: the hub sent more than the {limit} bytes allowed for "
                             f"{filename}; the download was stopped and deleted, nothing was installed",
                             hint="ask the bundle's publisher to push the bundle again") from None
    return move_file(part, target)


def _staging_dir(repo_id: str, commit: str) -> Path:
    """One staging folder per repository and commit; stale commits of the same repository go."""
    repo_dir = paths.data_dir() / "downloads" / repo_id.replace("/", "--")
    for old in repo_dir.glob("*") if repo_dir.is_dir() else []:
        if old.name != commit:
            shutil.rmtree(old, ignore_errors=True)
    staging = repo_dir / commit
    staging.mkdir(parents=True, exist_ok=True)
    return staging


def _check_bundle_name(manifest: Manifest, repo_id: str) -> None:
    if not BUNDLE_NAME_RE.fullmatch(manifest.name):
        raise ManifestError(f"bundle name {manifest.name!r} in {repo_id} cannot be a folder name",
                            hint="ask the publisher to rebuild it with a plain name (letters, digits, . _ -)")


def _check_own_names(manifest: Manifest, repo_id: str) -> None:
    """Refuse a manifest naming pull's bookkeeping (``.hub-source.json``, ``.partial/``, ``*.part``,
    the manifest itself): installing it would overwrite what pull relies on to resume and to know
    where a bundle came from."""
    for promised in promised_files(manifest):
        parts = promised.path.split("/")
        if promised.path == MANIFEST_NAME or any(part.startswith(".") for part in parts) \
                or parts[-1].endswith((PARTIAL_SUFFIX, ".partial")):
            raise ManifestError(f"the manifest of {repo_id} lists {promised.path!r}, a name pull keeps for its "
                                "own files (hidden names, *.part, *.partial, manifest.json)",
                                hint="nothing was installed; ask the bundle's publisher to rebuild it with "
                                     "`edge-assistant bundle create`")


def _check_name_free(target: Path, repo_id: str) -> None:
    """A pull may replace an older copy of the same repository, never some other bundle."""
    if not target.exists():
        return
    owner = read_source(target)
    if owner is None or owner.repo_id.lower() != repo_id.lower():
        origin = f"pulled from {owner.repo_id}" if owner else "not pulled from a hub"
        raise HubError(f"another bundle named {target.name!r} is installed in {target} ({origin})",
                       hint=f"remove or rename {target}, then pull again (the download is kept)")


def _check_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise DiskSpaceError(f"the bundle needs {_human(needed)} and {folder} has {_human(free)} free",
                             hint="free some space (or set EDGE_ASSISTANT_HOME to a bigger disk) and pull again")


def _install(staging: Path, root: Path, manifest: Manifest, source: HubSource) -> Path:
    """Rename the verified staging folder to ``root/<name>``, replacing an older copy."""
    shutil.rmtree(staging / PARTIAL_DIR, ignore_errors=True)
    _write_source(staging, source)
    root.mkdir(parents=True, exist_ok=True)
    target = root / manifest.name
    _check_name_free(target, source.repo_id)
    if os.stat(staging).st_dev == os.stat(root).st_dev:
        fsync_tree(staging)
        swap_folder(staging, target)
    else:
        # A rename cannot cross file systems: copy next to the target first, then swap it in there.
        with atomic_folder(target) as incoming:
            shutil.copytree(staging, incoming, dirs_exist_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    if not any(staging.parent.iterdir()):
        staging.parent.rmdir()
    return target


# --- push --------------------------------------------------------------------------------------


def push_bundle(bundle_dir: str | Path, repo_id: str, *, private: bool = False,
                revision: str | None = None, progress: Progress | None = None) -> str:
    """Check a bundle, then upload it as one commit; return the commit's URL."""
    _check_repo_id(repo_id)
    folder = Path(bundle_dir)
    manifest = load_manifest(folder)
    _verify_deep(folder, str(folder), "rebuild it with `edge-assistant bundle create`; nothing was uploaded")
    if hub_offline():
        raise HubError("HF_HUB_OFFLINE=1 forbids uploading", hint="unset HF_HUB_OFFLINE and push again")

    from huggingface_hub import CommitOperationAdd, HfApi

    endpoint = _endpoint()
    api = HfApi(endpoint=endpoint)
    names = shipped_names(manifest, folder)
    _say(progress, f"pushing {manifest.name} ({len(names)} files) to {repo_id} on {endpoint}")
    with translated(
            refused=Say(HubError, lambda why: f"the hub refused the upload to {repo_id} ({why})", _push_refused_hint),
            transport=Say(HubError, lambda why: f"the upload to {repo_id} failed ({why})",
                          "check the connection and push again (a commit is all or nothing)")):
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name)) for name in names]
        info = api.create_commit(repo_id, operations=operations, revision=revision,
                                 commit_message=f"edge-assistant bundle {manifest.name}")
    _say(progress, f"pushed {manifest.name} to {repo_id}: {info.commit_url}")
    return str(info.commit_url)


def _push_refused_hint(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if response is not None and response.status_code in (401, 403):
        return "log in with `hf auth login` or set HF_TOKEN to a token with write access"
    return "check the repository name and your access, then push again"
