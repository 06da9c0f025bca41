"""Issue 14's bad inputs, driven as a user would: the CLI in a child process, one line or success.

Each test here failed on the main branch of the day the issue was filed (a traceback,
a crash, a silent success or a changed file); the docstring of each says how.
"""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from edge_assistant import paths
from edge_assistant.bundle.manifest import load_manifest
from edge_assistant.bundle.unpack import unpack_base
from tests.support.bundles import edit_manifest, file_sha256, handmade_bundle, small_base, smollm2_bundle
from tests.support.lora import write_random_lora

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str | bytes, stdin: bytes | None = None, cwd: Path | None = None,
         env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[bytes]:
    environ = {**os.environ, "EDGE_ASSISTANT_THREADS": "1", **(env or {})}
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "edge_assistant.cli", *args], input=stdin, cwd=cwd or REPO,
                          env=environ, capture_output=True, timeout=timeout)


def _one_error(done: subprocess.CompletedProcess[bytes], code: int = 1) -> str:
    """The single `edge-assistant: error:` line of a failed run (no traceback, no signal)."""
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == code, (done.returncode, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("edge-assistant: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def real_bundle(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Path:
    return smollm2_bundle(tmp_path_factory.getbasetemp() / "smollm2-bundle", smollm2_gguf)


# --- 5: tracebacks instead of one-line errors ---------------------------------------------------


def _nested_json(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_a_deeply_nested_manifest_under_bundles_is_skipped_with_a_warning_by_list_doctor_and_ask(
        tmp_path: Path) -> None:
    """Was: RecursionError from json, so one bad folder broke `bundle list`, `ask` and `doctor`."""
    good = handmade_bundle(paths.bundles_dir() / "good", b"GGUF" + bytes(64))
    bad = paths.bundles_dir() / "deep"
    bad.mkdir()
    (bad / "manifest.json").write_text('{"name": ' + _nested_json(100_000) + "}")

    listed = _cli("bundle", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.decode().split()[0] == "good"
    warnings = listed.stderr.decode().strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: skipped {bad}") and "nested" in warnings[0]

    doctor = _cli("doctor")
    assert "Traceback" not in doctor.stderr.decode()
    assert "1 installed" in doctor.stdout.decode() and str(good.name) in doctor.stdout.decode()

    line = _one_error(_cli("ask", "--bundle", "missing", "hi"))
    assert "no bundle named 'missing' (installed: good)" in line


def test_nested_toml_in_settings_is_one_line(tmp_path: Path) -> None:
    """Was: RecursionError from tomllib."""
    paths.settings_file().parent.mkdir(parents=True, exist_ok=True)
    paths.settings_file().write_text("threads = " + "[" * 5000 + "\n")
    line = _one_error(_cli("ask", "hi"))
    assert "not valid TOML" in line and "nested" in line and "fix or delete the file" in line


def test_settings_toml_that_is_a_folder_is_one_line() -> None:
    """Was: IsADirectoryError traceback."""
    paths.settings_file().mkdir(parents=True)
    line = _one_error(_cli("ask", "hi"))
    assert "is a folder" in line and "move the folder aside" in line


def _gguf_with_kv(path: Path, kv: bytes, n_kv: int) -> Path:
    """A GGUF v3 header with no tensors and the given raw key/value section."""
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, n_kv) + kv)
    return path


def _key(name: str) -> bytes:
    return struct.pack("<Q", len(name)) + name.encode()


def test_nested_gguf_metadata_arrays_are_one_line(tmp_path: Path) -> None:
    """Was: RecursionError reading an array of arrays of arrays..."""
    depth = 20_000
    value = struct.pack("<I", 9) + b"".join(struct.pack("<IQ", 9, 1) for _ in range(depth)) \
        + struct.pack("<IQ", 4, 0)
    base = _gguf_with_kv(tmp_path / "nested.gguf", _key("general.nested") + value, 1)
    line = _one_error(_cli("bundle", "create", "--base", str(base), "--out", str(tmp_path / "b")))
    assert "array of arrays" in line and not (tmp_path / "b").exists()


@pytest.mark.parametrize("how", ["argv", "stdin", "system"])
def test_input_that_is_not_utf8_is_one_line(how: str) -> None:
    """Was: UnicodeEncodeError (argv, --system) or UnicodeDecodeError (stdin) tracebacks."""
    bad = b"hi \xff there"
    args: list[str | bytes] = ["ask"]
    if how == "argv":
        args.append(bad)
    elif how == "stdin":
        args.append("-")
    else:
        args += ["--system", bad, "hi"]
    line = _one_error(_cli(*args, stdin=bad if how == "stdin" else None), code=2)
    assert "not UTF-8" in line and "iconv" in line


def test_a_repo_id_ending_in_a_dot_is_one_line() -> None:
    """Was: HFValidationError traceback from huggingface-hub."""
    line = _one_error(_cli("pull", "o/x.", env={"HF_HUB_OFFLINE": "1"}), code=2)
    assert "'o/x.' is not a hub repository id" in line


def _with_router(bundle: Path) -> Path:
    router = bundle / "router"
    router.mkdir()
    (router / "routes.json").write_text("{}\n")
    (router / "unlisted.txt").write_text("not in the manifest\n")
    edit_manifest(bundle, lambda m: m.update(router={"dir": "router", "threshold": 0.5,
                                                      "files": {"routes.json": file_sha256(router / "routes.json")}}))
    return bundle


@pytest.mark.parametrize("via", ["relative", "symlink"])
def test_verify_quick_through_a_relative_path_or_symlink_warns_about_an_unlisted_router_file(
        tmp_path: Path, via: str) -> None:
    """Was: ValueError from Path.relative_to (the router folder was resolved, the bundle path not)."""
    bundle = _with_router(handmade_bundle(tmp_path / "real" / "b", b"GGUF" + bytes(64)))
    if via == "symlink":
        (tmp_path / "link").symlink_to(bundle)
        ref, cwd = str(tmp_path / "link"), tmp_path
    else:
        ref, cwd = "./b", bundle.parent
    done = _cli("bundle", "verify", "--quick", ref, cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().strip() == "warning: router/unlisted.txt is not listed in the manifest"
    assert done.stdout.decode().startswith("ok: b: 2 files")


# --- 6: thread count -----------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["flag", "env"])
def test_a_thread_count_of_100000_is_refused_with_one_line(where: str) -> None:
    """Was: llama.cpp killed by SIGSEGV creating 100000 threads."""
    if where == "flag":
        done = _cli("ask", "hi", "--threads", "100000")
    else:
        done = _cli("ask", "hi", env={"EDGE_ASSISTANT_THREADS": "100000"})
    line = _one_error(done)
    assert "threads = 100000 is more than the 256" in line and "use 0 (automatic)" in line


# --- 7: a damaged unpacked base in the cache -----------------------------------------------------


@pytest.mark.parametrize("where", ["header", "tensors"])
def test_a_damaged_cached_base_fails_verify_and_is_unpacked_again_with_a_notice(
        real_bundle: Path, tmp_path: Path, where: str) -> None:
    """Was: trusted on its size: `bundle verify` said OK, and `ask` failed (header) or ran garbage (tensors)."""
    manifest = load_manifest(real_bundle)
    cached = unpack_base(real_bundle, manifest)
    offset = 100 if where == "header" else manifest.base.size // 2
    with open(cached, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))

    for quick in ([], ["--quick"]):
        line = _one_error(_cli("bundle", "verify", str(real_bundle), *quick))
        assert "unpacked base in the cache" in line and str(cached) in line and "unpacks it again" in line

    done = _cli("ask", "--bundle", str(real_bundle), "--max-tokens", "2", "--temperature", "0", "Say hi.")
    assert done.returncode == 0, done.stderr
    assert "was damaged" in done.stderr.decode() and "unpacking it again" in done.stderr.decode()
    assert file_sha256(cached) == manifest.base.sha256
    ok = _cli("bundle", "verify", str(real_bundle), "--json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["cached_base"] == "ok"


# --- 9: names, hashes, terminal escapes ----------------------------------------------------------


@pytest.mark.parametrize("field,value", [("name", "evil\n"), ("sha256", "a" * 64 + "\n"),
                                         ("modifier", "code\n")])
def test_a_trailing_newline_does_not_pass_name_or_hash_checks(tmp_path: Path, field: str, value: str) -> None:
    """Was: the regexes ended in `$`, which also matches before a final newline."""
    bundle = handmade_bundle(tmp_path / "b", b"GGUF" + bytes(64))

    def edit(m: dict) -> None:
        if field == "name":
            m["name"] = value
        elif field == "sha256":
            m["base"]["sha256"] = value
        else:
            m["modifiers"] = [{"name": value, "file": "base.gguf.zst", "sha256": m["base"]["packed_sha256"],
                               "size": m["base"]["packed_size"], "base_sha256": m["base"]["sha256"],
                               "rank": 4, "alpha": 4.0}]
    edit_manifest(bundle, edit)
    line = _one_error(_cli("bundle", "info", str(bundle)))
    assert "manifest" in line or "not allowed" in line


def test_bundle_text_is_printed_without_control_characters(tmp_path: Path) -> None:
    """Was: an ESC in a description, the arch or the provenance reached the terminal as is."""
    bundle = handmade_bundle(paths.bundles_dir() / "b", b"GGUF" + bytes(64))
    esc = "\x1b]0;owned\x07\x1b[2J"
    edit_manifest(bundle, lambda m: (m["base"].update(arch="llama" + esc),
                                     m.update(provenance={"recipe": "r" + esc})))
    for args in (["bundle", "info", "b"], ["bundle", "list"], ["doctor"]):
        done = _cli(*args)
        out = done.stdout + done.stderr
        assert b"\x1b" not in out and b"\x07" not in out, (args, out)
        assert b"llama]0;owned[2J" in out or args == ["doctor"], (args, out)


# --- 10: history ----------------------------------------------------------------------------------


def test_a_history_from_a_newer_version_in_rollback_journal_mode_is_left_byte_for_byte_untouched() -> None:
    """Was: WAL mode was switched on (rewriting the header) before the version was checked."""
    db = paths.history_db()
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("CREATE TABLE future (x)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    line = _one_error(_cli("chat"))
    assert "newer edge-assistant" in line and "left untouched" in line
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def test_a_history_whose_wal_file_cannot_be_opened_does_not_say_to_move_the_file_aside() -> None:
    """Was: every failure to open said "move the file aside" (here the file is fine: its -wal is a folder)."""
    db = paths.history_db()
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    Path(f"{db}-wal").mkdir()
    line = _one_error(_cli("chat"))
    assert "move the file aside" not in line and "free disk space" not in line
    assert "exists and is writable" in line


# --- 11: bundle create as strict as llama.cpp -----------------------------------------------------


def test_a_truncated_adapter_or_base_is_refused_by_bundle_create(tmp_path: Path, smollm2_gguf: Path) -> None:
    """Was: accepted (only the header was read), to fail on the laptop at load."""
    base = small_base(tmp_path / "base.gguf", smollm2_gguf)
    adapter = write_random_lora(tmp_path / "code.gguf", smollm2_gguf, rank=4, base_sha256=file_sha256(base))
    short = tmp_path / "short.gguf"
    short.write_bytes(adapter.read_bytes()[:-100])
    line = _one_error(_cli("bundle", "create", "--base", str(base), "--out", str(tmp_path / "a"),
                           "--modifier", f"code={short}", "--bind-unverified"))
    assert "is truncated" in line and "short.gguf" in line

    short_base = tmp_path / "short-base.gguf"
    short_base.write_bytes(base.read_bytes()[:3 << 20])
    line = _one_error(_cli("bundle", "create", "--base", str(short_base), "--out", str(tmp_path / "b")))
    assert "is truncated" in line and "short-base.gguf" in line
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_nan_alpha_is_refused_and_never_written_as_json(tmp_path: Path, smollm2_gguf: Path) -> None:
    """Was: written to manifest.json as the bare word NaN, which is not JSON."""
    base = small_base(tmp_path / "base.gguf", smollm2_gguf)
    adapter = write_random_lora(tmp_path / "code.gguf", smollm2_gguf, rank=4, alpha=float("nan"),
                                base_sha256=file_sha256(base))
    line = _one_error(_cli("bundle", "create", "--base", str(base), "--out", str(tmp_path / "b"),
                           "--modifier", f"code={adapter}"))
    assert "adapter.lora.alpha nan" in line
    assert not (tmp_path / "b").exists()
