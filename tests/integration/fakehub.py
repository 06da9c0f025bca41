"""A small Hugging Face Hub on 127.0.0.1 for the real huggingface-hub client.

It serves the endpoints the client calls to download and upload (learnt from
huggingface_hub 2.x's file_download.py, _commit_api.py and hf_api.py):

    HEAD/GET /{repo}/resolve/{revision}/{path}           X-Repo-Commit, ETag, Content-Length, Range
    POST     /api/repos/create                           409 when the repository exists
    POST     /api/models/{repo}/branch/{branch}          new branch from main
    POST     /api/models/{repo}/preupload/{revision}     every file "regular" (no LFS/xet)
    POST     /api/models/{repo}/commit/{revision}        NDJSON: header, then base64 files
    GET      /api/models/{repo}/revision/{revision}      repo info (sha)

and a few faults a network has: a file served with the right size and wrong
bytes (``corrupt``), a connection that dies at a byte offset (``drop_at``), after
which the hub is unreachable (``down``) until a test brings it back.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass
class Repo:
    private: bool = False
    branches: dict[str, str] = field(default_factory=dict)           # branch -> commit
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit -> path -> bytes


@dataclass
class Request:
    method: str
    path: str
    range: str | None


class FakeHub:
    """Start with ``with FakeHub() as hub:``; ``hub.url`` goes into HF_ENDPOINT."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.corrupt: set[str] = set()          # file paths served with flipped bytes, same length
        self.drop_at: dict[str, int] = {}       # file path -> byte offset where the connection dies
        self.down = False                       # True: every connection is closed unanswered
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- repository state ------------------------------------------------------------------

    def create_repo(self, repo_id: str, *, private: bool = False) -> Repo:
        with self._lock:
            repo = self.repos.setdefault(repo_id.lower(), Repo(private=private))
            if "main" not in repo.branches:
                first = self._new_sha("init", repo_id)
                repo.commits[first] = {}
                repo.branches["main"] = first
            return repo

    def commit(self, repo_id: str, files: dict[str, bytes], *, branch: str = "main",
               deletes: tuple[str, ...] = ()) -> str:
        """Apply a change to ``branch`` and return the new commit id."""
        with self._lock:
            repo = self.repos[repo_id.lower()]
            parent = repo.branches.get(branch) or repo.branches["main"]
            tree = dict(repo.commits[parent])
            for path in deletes:
                tree.pop(path, None)
            tree.update(files)
            sha = self._new_sha(parent, *sorted(files))
            repo.commits[sha] = tree
            repo.branches[branch] = sha
            return sha

    def publish_folder(self, repo_id: str, folder: Path) -> str:
        """Seed a repository with every file of ``folder`` (what a publisher would have pushed)."""
        self.create_repo(repo_id)
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        return self.commit(repo_id, files)

    def tree(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id.lower()]
        return repo.commits[repo.branches.get(revision, revision)]

    def _new_sha(self, *parts: str) -> str:
        self._counter += 1
        return hashlib.sha1("\0".join([str(self._counter), *parts]).encode()).hexdigest()

    def _resolve(self, repo_id: str, revision: str) -> tuple[Repo | None, str | None]:
        repo = self.repos.get(repo_id.lower())
        if repo is None:
            return None, None
        if revision in repo.branches:
            return repo, repo.branches[revision]
        if revision in repo.commits:
            return repo, revision
        return repo, None


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep test output quiet
            pass

        # --- plumbing ------------------------------------------------------------------------

        def _hang_up(self) -> bool:
            if not hub.down:
                return False
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                  *, head: bool = False) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            if "Content-Length" not in (headers or {}):
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head and body:
                self.wfile.write(body)

        def _json(self, status: int, obj: object) -> None:
            self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})

        def _error(self, status: int, code: str, message: str, *, head: bool = False,
                   commit: str | None = None) -> None:
            headers = {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"}
            if commit:
                headers["X-Repo-Commit"] = commit
            self._send(status, json.dumps({"error": message}).encode(), headers, head=head)

        def _record(self) -> list[str]:
            path = urlsplit(self.path).path
            hub.requests.append(Request(self.command, unquote(path), self.headers.get("Range")))
            return [unquote(p) for p in path.strip("/").split("/")]

        # --- verbs -----------------------------------------------------------------------------

        def do_HEAD(self) -> None:
            if self._hang_up():
                return
            parts = self._record()
            if len(parts) >= 5 and parts[2] == "resolve":
                self._resolve_file(parts, head=True)
            else:
                self._send(404, head=True)

        def do_GET(self) -> None:
            if self._hang_up():
                return
            parts = self._record()
            if len(parts) >= 5 and parts[2] == "resolve":
                self._resolve_file(parts, head=False)
            elif len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "revision":
                self._repo_info(f"{parts[2]}/{parts[3]}", "/".join(parts[5:]))
            else:
                self._error(404, "NotFound", "no such endpoint")

        def do_POST(self) -> None:
            if self._hang_up():
                return
            parts = self._record()
            body = self._body()
            if parts == ["api", "repos", "create"]:
                self._create_repo(json.loads(body or b"{}"))
            elif len(parts) >= 6 and parts[:2] == ["api", "models"]:
                repo_id, action, revision = f"{parts[2]}/{parts[3]}", parts[4], "/".join(parts[5:])
                if action == "preupload":
                    self._preupload(repo_id, json.loads(body))
                elif action == "commit":
                    self._commit(repo_id, revision, body)
                elif action == "branch":
                    self._branch(repo_id, revision)
                else:
                    self._error(404, "NotFound", f"no endpoint {action}")
            else:
                self._error(404, "NotFound", "no such endpoint")

        # --- endpoints ---------------------------------------------------------------------------

        def _resolve_file(self, parts: list[str], *, head: bool) -> None:
            repo_id, revision, path = f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:])
            repo, commit = hub._resolve(repo_id, revision)
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found", head=head)
            if commit is None:
                return self._error(404, "RevisionNotFound", "Invalid rev id", head=head)
            tree = repo.commits[commit]
            if path not in tree:
                return self._error(404, "EntryNotFound", "Entry not found", head=head, commit=commit)
            data = tree[path]
            if path in hub.corrupt:
                data = bytes(b ^ 0x5A for b in data)       # same length, every byte wrong
            headers = {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha256(tree[path]).hexdigest()}"',
                       "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
            start, status = 0, 200
            match = _RANGE_RE.match(self.headers.get("Range") or "")
            if match and not head:
                start, status = int(match.group(1)), 206
                end = int(match.group(2)) if match.group(2) else len(data) - 1
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
                data = data[start:end + 1]
            headers["Content-Length"] = str(len(data))
            cut = hub.drop_at.get(path)
            if head or cut is None or start + len(data) <= cut:
                return self._send(status, data, headers, head=head)
            # Die mid-body at absolute offset `cut`: the peer sees a short read and then no hub at all.
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data[:max(cut - start, 0)])
            self.wfile.flush()
            hub.down = True
            self._hang_up()

        def _repo_info(self, repo_id: str, revision: str) -> None:
            repo, commit = hub._resolve(repo_id, revision)
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found")
            if commit is None:
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            self._json(200, {"id": repo_id, "sha": commit, "private": repo.private,
                             "siblings": [{"rfilename": p} for p in sorted(repo.commits[commit])]})

        def _create_repo(self, payload: dict) -> None:
            repo_id = f"{payload.get('organization')}/{payload.get('name')}"
            if repo_id.lower() in hub.repos:
                return self._error(409, "RepoExists", "You already created this model repo")
            hub.create_repo(repo_id, private=payload.get("visibility") == "private")
            self._json(200, {"url": f"{hub.url}/{repo_id}"})

        def _branch(self, repo_id: str, branch: str) -> None:
            repo = hub.repos.get(repo_id.lower())
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found")
            if branch in repo.branches:
                return self._error(409, "BranchExists", "Reference already exists")
            repo.branches[branch] = repo.branches["main"]
            self._json(200, {})

        def _preupload(self, repo_id: str, payload: dict) -> None:
            if repo_id.lower() not in hub.repos:
                return self._error(404, "RepoNotFound", "Repository not found")
            self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                        "oid": None} for f in payload["files"]]})

        def _commit(self, repo_id: str, revision: str, body: bytes) -> None:
            if repo_id.lower() not in hub.repos:
                return self._error(404, "RepoNotFound", "Repository not found")
            files: dict[str, bytes] = {}
            deletes: list[str] = []
            for line in body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                elif item["key"] == "deletedFile":
                    deletes.append(item["value"]["path"])
                elif item["key"] != "header":
                    return self._error(400, "BadRequest", f"this fake hub does not take {item['key']}")
            sha = hub.commit(repo_id, files, branch=revision, deletes=tuple(deletes))
            self._json(200, {"success": True, "commitOid": sha, "commitUrl": f"{hub.url}/{repo_id}/commit/{sha}"})

    return Handler
