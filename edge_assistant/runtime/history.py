"""Chat history in SQLite: conversations and their messages, never lost.

Guarantees the chat app relies on:

* The user's turn is committed before generation starts, and a reply is a row
  from its first token on: ``begin_reply`` inserts it as ``partial`` and
  :class:`~edge_assistant.runtime.reply_recorder.ReplyRecorder` commits the text
  so far every few tokens, so a killed process loses at most that much.
* WAL journal and a busy timeout, so a second instance on the same file works:
  readers never block the writer, and writers wait for each other instead of
  failing. Each write is a short ``BEGIN IMMEDIATE`` transaction (an immediate
  transaction waits on the busy timeout; a deferred one that upgrades to a
  write can fail at once in WAL mode).
* The schema is an ordered list of migrations tracked with ``PRAGMA
  user_version``; a file from a newer version is refused, never altered.

The store is shared by the app's UI thread and its generation worker: one
connection, serialised by a lock.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Literal, Sequence

from ..durable import write_text
from ..errors import HistoryError
from ..modifier_names import shown
from ..router.decision import RouteDecision
from .generation import GenerationResult

Status = Literal["complete", "partial", "stopped", "error"]
STATUSES: tuple[Status, ...] = ("complete", "partial", "stopped", "error")

DEFAULT_BUSY_TIMEOUT_S = 5.0
TITLE_LENGTH = 60


@dataclass(frozen=True)
class Migration:
    version: int
    why: str
    statements: tuple[str, ...]
    needs_fts5: bool = False


# The schema's history, oldest first. Never edit a row that has shipped: add one.
MIGRATIONS: tuple[Migration, ...] = (
    # 1: the two tables. A reply's route and costs live on its row so the app can
    #    show which modifier answered long after the router has changed.
    Migration(1, "conversations and messages", (
        """CREATE TABLE conversations (
               id            INTEGER PRIMARY KEY,
               title         TEXT NOT NULL,
               system_prompt TEXT NOT NULL DEFAULT '',
               created_at    REAL NOT NULL,
               updated_at    REAL NOT NULL
           )""",
        """CREATE TABLE messages (
               id                INTEGER PRIMARY KEY,
               conversation_id   INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
               role              TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
               content           TEXT NOT NULL,
               status            TEXT NOT NULL DEFAULT 'complete'
                                 CHECK (status IN ('complete', 'partial', 'stopped', 'error')),
               modifier          TEXT,
               route_confidence  REAL,
               route_reason      TEXT,
               prompt_tokens     INTEGER,
               completion_tokens INTEGER,
               ttft_s            REAL,
               decode_tok_s      REAL,
               error             TEXT,
               created_at        REAL NOT NULL,
               updated_at        REAL NOT NULL
           )""",
        "CREATE INDEX messages_by_conversation ON messages (conversation_id, id)",
        "CREATE INDEX conversations_by_recency ON conversations (updated_at DESC)",
    )),
    # 2: full-text search over message text, kept in step by triggers. Skipped where
    #    SQLite lacks FTS5; search then falls back to LIKE.
    Migration(2, "full-text search (FTS5)", (
        """CREATE VIRTUAL TABLE messages_fts USING fts5(
               content, content='messages', content_rowid='id', tokenize='unicode61')""",
        """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
               INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
           END""",
        """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
               INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
           END""",
        """CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
               INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
               INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
           END""",
        "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
    ), needs_fts5=True),
    # 3: how a reply's prompt was read, for the chat app's "why" line: the prompt tokens
    #    computed for it (the rest came from a kept state) and how (runtime/kvstate.py).
    Migration(3, "prompt tokens read per reply", (
        "ALTER TABLE messages ADD COLUMN read_tokens INTEGER",
        "ALTER TABLE messages ADD COLUMN kv_state TEXT",
    )),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


@dataclass(frozen=True)
class Conversation:
    id: int
    title: str
    system_prompt: str
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class StoredMessage:
    id: int
    conversation_id: int
    role: Literal["user", "assistant"]
    content: str
    status: Status
    modifier: str | None
    route_confidence: float | None
    route_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_s: float | None
    decode_tok_s: float | None
    error: str | None
    created_at: float
    read_tokens: int | None = None   # prompt tokens computed for this reply (None: not recorded)
    kv_state: str | None = None      # how its prompt was read (runtime/kvstate.py)


@dataclass(frozen=True)
class SearchHit:
    conversation_id: int
    title: str
    message_id: int | None   # None: the title matched
    snippet: str


def _fts5_available(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp._fts5_probe USING fts5(x)")
        conn.execute("DROP TABLE temp._fts5_probe")
        return True
    except sqlite3.OperationalError:
        return False


def _busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class History:
    """The chat history database (``paths.history_db()`` unless told otherwise)."""

    def __init__(self, path: Path, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryError(f"cannot create the folder for the chat history {self.path.parent} ({exc})",
                               hint="check its permissions or set EDGE_ASSISTANT_HOME") from exc
        try:
            # Autocommit mode: every write opens its own BEGIN IMMEDIATE below.
            self._conn = sqlite3.connect(str(self.path), timeout=busy_timeout_s, isolation_level=None,
                                         check_same_thread=False)
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open the chat history {self.path} ({exc})",
                               hint="check the file's permissions") from exc
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            # Before anything writes (switching to WAL rewrites the header): a newer file stays untouched.
            self._refuse_newer(self._conn.execute("PRAGMA user_version").fetchone()[0])
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise HistoryError(f"the chat history {self.path} cannot use write-ahead logging "
                                   f"(journal mode stayed '{mode}')",
                                   hint="keep the history on a local disk (set EDGE_ASSISTANT_HOME)")
            self._conn.execute("PRAGMA foreign_keys = ON")
            # WAL with NORMAL is durable across a killed process (only a power cut can
            # lose the last commits) and much cheaper than FULL for per-token saves.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            if isinstance(exc, sqlite3.OperationalError) and _busy(exc):
                raise self._busy_error(exc) from exc
            raise HistoryError(f"{self.path} is not a usable chat history ({exc})", hint=self._hint(exc)) from exc
        except HistoryError:
            self._conn.close()
            raise
        self.has_fts = self._table_exists("messages_fts")

    # -- plumbing ---------------------------------------------------------------

    def _busy_error(self, exc: Exception) -> HistoryError:
        return HistoryError(f"the chat history {self.path} stayed locked by another edge-assistant "
                            f"process ({exc})", hint="try again, or close the other chat window")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One committed write transaction; SQLite errors become HistoryError."""
        with self._lock:
            self._check_open()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise (self._busy_error(exc) if _busy(exc) else self._error(exc)) from exc
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise (self._busy_error(exc) if isinstance(exc, sqlite3.OperationalError) and _busy(exc)
                       else self._error(exc)) from exc
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        # SQLite may already have rolled back (disk full, I/O error): then there is nothing to undo.
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            self._check_open()
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise (self._busy_error(exc) if isinstance(exc, sqlite3.OperationalError) and _busy(exc)
                       else self._error(exc)) from exc

    def _error(self, exc: Exception) -> HistoryError:
        return HistoryError(f"the chat history {self.path} failed ({exc})", hint=self._hint(exc))

    def _hint(self, exc: Exception) -> str:
        """The next step for this SQLite failure: each cause gets its own (by SQLite's error code)."""
        code = str(getattr(exc, "sqlite_errorname", "") or "")
        where = "`edge-assistant paths` shows where it lives"
        if code.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")):
            return f"the file or its folder {self.path.parent} is read-only: make both writable, or set " \
                   "EDGE_ASSISTANT_HOME to a writable folder"
        if code.startswith("SQLITE_CANTOPEN"):
            return f"check that {self.path.parent} exists and is writable; {where}"
        if code.startswith("SQLITE_FULL"):
            return f"the disk is full: free some space; {where}"
        if code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            return "the file is damaged or not a chat history: move the file aside to start a new history"
        if code.startswith("SQLITE_IOERR"):
            return f"the disk reported an error: check it (and its free space); {where}"
        return where

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise HistoryError(f"the chat history {self.path} was written by a newer edge-assistant "
                               f"(schema {version}, this one knows up to {SCHEMA_VERSION})",
                               hint="upgrade edge-assistant; the file was left untouched")

    def _check_open(self) -> None:
        if self._closed:
            raise HistoryError("the chat history is closed", hint="restart the chat app")

    def _table_exists(self, name: str) -> bool:
        return bool(self._read("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)))

    def _migrate(self) -> None:
        conn = self._conn
        if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return  # the usual case: no write lock needed to open the history
        # Checked again inside the write lock so two first runs cannot both apply a migration.
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            self._refuse_newer(current)
            fts5 = _fts5_available(conn)
            for migration in MIGRATIONS:
                if migration.version <= current:
                    continue
                if not migration.needs_fts5 or fts5:
                    for statement in migration.statements:
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {migration.version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> "History":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def integrity_check(self) -> str:
        """``ok`` when SQLite finds nothing wrong, else its first complaint."""
        return str(self._read("PRAGMA integrity_check")[0][0])

    @property
    def schema_version(self) -> int:
        return int(self._read("PRAGMA user_version")[0][0])

    # -- conversations ------------------------------------------------------------

    def create_conversation(self, title: str, system_prompt: str = "") -> Conversation:
        now = time.time()
        with self._write() as conn:
            cur = conn.execute("INSERT INTO conversations (title, system_prompt, created_at, updated_at) "
                               "VALUES (?, ?, ?, ?)", (_clean_title(title), system_prompt, now, now))
            conversation_id = int(cur.lastrowid or 0)
        return self.conversation(conversation_id)

    def conversation(self, conversation_id: int) -> Conversation:
        rows = self._read("SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        if not rows:
            raise HistoryError(f"conversation {conversation_id} is not in the history (deleted elsewhere?)",
                               hint="pick another conversation or start a new one (ctrl+n)")
        return _conversation(rows[0])

    def conversations(self, limit: int = 500) -> list[Conversation]:
        """Most recently active first."""
        rows = self._read("SELECT * FROM conversations ORDER BY updated_at DESC, id DESC LIMIT ?", (limit,))
        return [_conversation(r) for r in rows]

    def rename(self, conversation_id: int, title: str) -> Conversation:
        cleaned = _clean_title(title)
        if not cleaned:
            raise HistoryError("a conversation title cannot be empty", hint="type a title")
        with self._write() as conn:
            cur = conn.execute("UPDATE conversations SET title = ? WHERE id = ?", (cleaned, conversation_id))
            self._require_row(cur, conversation_id)
        return self.conversation(conversation_id)

    def set_system_prompt(self, conversation_id: int, system_prompt: str) -> Conversation:
        with self._write() as conn:
            cur = conn.execute("UPDATE conversations SET system_prompt = ?, updated_at = ? WHERE id = ?",
                               (system_prompt, time.time(), conversation_id))
            self._require_row(cur, conversation_id)
        return self.conversation(conversation_id)

    def delete_conversation(self, conversation_id: int) -> None:
        with self._write() as conn:
            cur = conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            self._require_row(cur, conversation_id)

    @staticmethod
    def _require_row(cur: sqlite3.Cursor, conversation_id: int) -> None:
        if cur.rowcount == 0:
            raise HistoryError(f"conversation {conversation_id} is not in the history (deleted elsewhere?)",
                               hint="pick another conversation or start a new one (ctrl+n)")

    # -- messages -----------------------------------------------------------------

    def add_user_message(self, conversation_id: int, content: str) -> StoredMessage:
        """Commit the user's turn (before any generation starts)."""
        now = time.time()
        with self._write() as conn:
            cur = conn.execute("INSERT INTO messages (conversation_id, role, content, status, created_at, "
                               "updated_at) VALUES (?, 'user', ?, 'complete', ?, ?)",
                               (conversation_id, content, now, now))
            conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
            message_id = int(cur.lastrowid or 0)
        return self.message(message_id)

    def begin_reply(self, conversation_id: int, decision: RouteDecision | None) -> int:
        """An empty assistant row marked ``partial``, with the route that chose who answers."""
        now = time.time()
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO messages (conversation_id, role, content, status, modifier, route_confidence, "
                "route_reason, created_at, updated_at) VALUES (?, 'assistant', '', 'partial', ?, ?, ?, ?, ?)",
                (conversation_id, decision.modifier if decision else None,
                 decision.confidence if decision else None, decision.reason if decision else None, now, now))
            conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id))
            return int(cur.lastrowid or 0)

    def save_partial(self, message_id: int, content: str, completion_tokens: int) -> None:
        with self._write() as conn:
            conn.execute("UPDATE messages SET content = ?, completion_tokens = ?, updated_at = ? "
                         "WHERE id = ? AND status = 'partial'",
                         (content, completion_tokens, time.time(), message_id))

    def finish_reply(self, message_id: int, content: str, status: Status,
                     result: GenerationResult | None = None, error: str | None = None) -> StoredMessage:
        if status not in STATUSES or status == "partial":
            raise ValueError(f"a finished reply cannot have status {status!r}")
        with self._write() as conn:
            conn.execute(
                "UPDATE messages SET content = ?, status = ?, prompt_tokens = ?, completion_tokens = ?, "
                "ttft_s = ?, decode_tok_s = ?, read_tokens = ?, kv_state = ?, error = ?, updated_at = ? "
                "WHERE id = ?",
                (content, status, result.prompt_tokens if result else None,
                 result.completion_tokens if result else None, result.ttft_s if result else None,
                 result.decode_tok_s if result else None, result.read_tokens if result else None,
                 (result.kv_state or None) if result else None, error, time.time(), message_id))
        return self.message(message_id)

    def delete_message(self, message_id: int) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    def message(self, message_id: int) -> StoredMessage:
        rows = self._read("SELECT * FROM messages WHERE id = ?", (message_id,))
        if not rows:
            raise HistoryError(f"message {message_id} is not in the history (deleted elsewhere?)",
                               hint="reopen the conversation")
        return _message(rows[0])

    def messages(self, conversation_id: int) -> list[StoredMessage]:
        rows = self._read("SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,))
        return [_message(r) for r in rows]

    # -- search and export --------------------------------------------------------

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Conversations whose title or messages contain every word of ``query``."""
        words = [w for w in re.split(r"\s+", query.strip()) if w]
        if not words:
            return []
        like_title = " AND ".join("c.title LIKE ? ESCAPE '\\'" for _ in words)
        hits = [SearchHit(r["id"], r["title"], None, r["title"]) for r in self._read(
            f"SELECT c.id, c.title FROM conversations c WHERE {like_title} ORDER BY c.updated_at DESC LIMIT ?",
            (*(_like(w) for w in words), limit))]
        if self.has_fts:
            # Each word quoted (so FTS syntax in user text is literal), the last one as a prefix.
            match = " ".join('"' + w.replace('"', '""') + '"' for w in words) + "*"
            rows = self._read(
                "SELECT m.id, m.conversation_id, c.title, "
                "snippet(messages_fts, 0, '[', ']', '…', 12) AS snip "
                "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
                "JOIN conversations c ON c.id = m.conversation_id "
                "WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?", (match, limit))
        else:
            like_content = " AND ".join("m.content LIKE ? ESCAPE '\\'" for _ in words)
            rows = self._read(
                "SELECT m.id, m.conversation_id, c.title, substr(m.content, 1, 80) AS snip "
                f"FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE {like_content} "
                "ORDER BY m.id DESC LIMIT ?", (*(_like(w) for w in words), limit))
        hits += [SearchHit(r["conversation_id"], r["title"], r["id"], " ".join(r["snip"].split()))
                 for r in rows]
        return hits[:limit]

    def export_markdown(self, conversation_id: int, directory: Path) -> Path:
        """Write the conversation as Markdown into ``directory``; returns the path written."""
        conversation = self.conversation(conversation_id)
        text = render_markdown(conversation, self.messages(conversation_id))
        directory = Path(directory)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            slug = re.sub(r"[^a-z0-9]+", "-", conversation.title.lower()).strip("-")[:40] or "conversation"
            target = directory / f"{conversation.id:04d}-{slug}.md"
            write_text(target, text)
        except OSError as exc:
            raise HistoryError(f"cannot export to {directory} ({exc})",
                               hint="choose another folder: /export PATH") from exc
        return target


_STATUS_NOTE = {
    "partial": "unfinished: still being written when exported, or the app ended mid-reply",
    "stopped": "stopped by the user",
    "error": "failed",
}


def render_markdown(conversation: Conversation, messages: Sequence[StoredMessage]) -> str:
    created = datetime.fromtimestamp(conversation.created_at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# {conversation.title}", "", f"*Started {created}.*", ""]
    if conversation.system_prompt:
        lines += ["**System prompt:**", "", *[f"> {line}" for line in conversation.system_prompt.splitlines()], ""]
    for message in messages:
        if message.role == "user":
            lines += ["## You", "", message.content, ""]
            continue
        who = shown(message.modifier)
        meta = [f"modifier: {who}"]
        if message.route_confidence is not None:
            meta.append(f"confidence {message.route_confidence:.2f}")
        if message.decode_tok_s:
            meta.append(f"{message.decode_tok_s:.1f} tok/s")
        lines += [f"## Assistant ({', '.join(meta)})", ""]
        if message.status in _STATUS_NOTE:
            note = _STATUS_NOTE[message.status]
            lines += [f"*[{note}{': ' + message.error if message.error else ''}]*", ""]
        lines += [close_open_fence(message.content), ""]
    return "\n".join(lines).rstrip() + "\n"


# A fence line: 3+ backticks or tildes, indented at most 3 spaces (CommonMark).
_FENCE_LINE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def close_open_fence(text: str) -> str:
    """``text`` with a closing fence added if it ends inside a fenced code block.

    A reply stopped mid-block would otherwise swallow the rest of an exported
    conversation into its code block. A closing fence uses the opener's
    character, at least as many of them, and nothing after but spaces.
    """
    opener: str | None = None
    for line in text.splitlines():
        match = _FENCE_LINE.match(line)
        if not match:
            continue
        fence, rest = match.groups()
        if opener is None:
            if not (fence[0] == "`" and "`" in rest):  # a backtick fence's info string has no backticks
                opener = fence
        elif fence[0] == opener[0] and len(fence) >= len(opener) and not rest.strip():
            opener = None
    if opener is None:
        return text
    return text + ("" if text.endswith("\n") else "\n") + opener


def _clean_title(title: str) -> str:
    one_line = " ".join(title.split())
    return one_line if len(one_line) <= TITLE_LENGTH else one_line[: TITLE_LENGTH - 1].rstrip() + "…"


def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _conversation(row: sqlite3.Row) -> Conversation:
    return Conversation(row["id"], row["title"], row["system_prompt"], row["created_at"], row["updated_at"])


def _message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(
        id=row["id"], conversation_id=row["conversation_id"], role=row["role"], content=row["content"],
        status=row["status"], modifier=row["modifier"], route_confidence=row["route_confidence"],
        route_reason=row["route_reason"], prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"], ttft_s=row["ttft_s"], decode_tok_s=row["decode_tok_s"],
        error=row["error"], created_at=row["created_at"], read_tokens=row["read_tokens"],
        kv_state=row["kv_state"])
