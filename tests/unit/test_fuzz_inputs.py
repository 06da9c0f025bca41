"""Fuzzing what a bundle brings: manifests, GGUF bases and adapters, mutated at test time.

Every case must end in success or one `edge-assistant: error:` line (an
``EdgeAssistantError``), never another exception, a hang or a signal. The seed of
each run is in the failure message; set FUZZ_SEED to replay it.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import struct
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from click.testing import CliRunner

from edge_assistant import paths
from edge_assistant.bundle.adapter import inspect_adapter
from edge_assistant.bundle.ggufmeta import read_gguf_info
from edge_assistant.cli import main
from edge_assistant.errors import EdgeAssistantError
from tests.support.bundles import handmade_bundle

SEED = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(1 << 32))
CASE_SECONDS = 10   # far above any case (milliseconds): only a hang gets here


@contextmanager
def _deadline(what: str) -> Iterator[None]:
    def hung(signum: int, frame: object) -> None:
        raise AssertionError(f"hung for {CASE_SECONDS} s: {what} (FUZZ_SEED={SEED})")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(CASE_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _run_cli(args: list[str], what: str) -> None:
    with _deadline(what):
        result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"{what}: {result.exception!r} (FUZZ_SEED={SEED})"
    assert result.exit_code in (0, 1, 2), f"{what}: exit {result.exit_code} (FUZZ_SEED={SEED})"
    errors = [line for line in result.stderr.splitlines() if line.startswith("edge-assistant: error:")]
    assert len(errors) == (0 if result.exit_code == 0 else 1), f"{what}: {result.stderr!r} (FUZZ_SEED={SEED})"
    assert "Traceback" not in result.output


# --- manifests ------------------------------------------------------------------------------------

_VALUES: list[Any] = [None, True, False, 0, -1, 2 ** 70, 1.5, float("nan"), float("inf"), "", "x" * 10_000,
                      "../../outside", "/etc/passwd", "C:\\x", "a/../../b", "evil\n", "\x1b]0;t\x07", "\ud800",
                      "\x00", [], {}, [1, [2, [3]]], {"a": {"b": {}}}, "0" * 64, "a" * 64 + "\n"]


def _paths_in(data: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths_in(value, prefix + (key,))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found += _paths_in(value, prefix + (i,))
    return found


def _mutate(data: dict, rng: random.Random) -> str:
    """One or a few structural edits, sometimes followed by damage to the JSON text itself."""
    for _ in range(rng.randint(1, 3)):
        where = rng.choice(_paths_in(data)[1:])
        parent = data
        for step in where[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and rng.random() < 0.3:
            del parent[where[-1]]
        else:
            parent[where[-1]] = rng.choice(_VALUES)
    text = json.dumps(data, allow_nan=True)
    roll = rng.random()
    if roll < 0.1:
        depth = rng.choice([100, 5_000, 200_000])
        text = text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    elif roll < 0.2:
        text = text[: rng.randrange(len(text))]
    elif roll < 0.3:
        pos = rng.randrange(len(text))
        text = text[:pos] + chr(rng.randrange(1, 0x3000)) + text[pos + 1:]
    return text


def _with_modifier_and_router(bundle: Path) -> dict:
    data = json.loads((bundle / "manifest.json").read_text())
    base = data["base"]
    data["modifiers"] = [{"name": "code", "file": "base.gguf.zst", "sha256": base["packed_sha256"],
                          "size": base["packed_size"], "base_sha256": base["sha256"], "rank": 4, "alpha": 8.0,
                          "description": "writes code", "default_scale": 1.0}]
    (bundle / "router").mkdir()
    data["router"] = {"dir": "router", "threshold": 0.5, "files": {}}
    data["provenance"] = {"recipe": "fuzz"}
    return data


def test_mutated_manifests_give_success_or_one_line_from_verify_info_and_list() -> None:
    rng = random.Random(SEED)
    bundle = handmade_bundle(paths.bundles_dir() / "fz", b"GGUF" + bytes(256))
    valid = _with_modifier_and_router(bundle)
    for case in range(120):
        text = _mutate(json.loads(json.dumps(valid)), rng)
        (bundle / "manifest.json").write_text(text, encoding="utf-8", errors="surrogatepass")
        for args in (["bundle", "verify", "--quick", str(bundle)], ["bundle", "info", str(bundle)],
                     ["bundle", "list"], ["bundle", "info", "fz", "--json"]):
            _run_cli(args, f"case {case}: {' '.join(args)} on {text[:200]!r}")


# --- GGUF bases and adapters ----------------------------------------------------------------------


def _tiny_base(path: Path) -> Path:
    import gguf

    rng = np.random.default_rng(0)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(256)
    writer.add_embedding_length(32)
    writer.add_block_count(1)
    writer.add_token_list([f"t{i}" for i in range(64)])
    writer.add_array("tokenizer.ggml.scores", [float(i) for i in range(64)])
    writer.add_tensor("token_embd.weight", rng.standard_normal((64, 32), dtype=np.float32))
    for proj in ("attn_q", "attn_v"):
        writer.add_tensor(f"blk.0.{proj}.weight", rng.standard_normal((32, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _header_length(path: Path) -> int:
    info = read_gguf_info(path, tensors=True)
    assert info.data_offset is not None
    return info.data_offset


def _mutated_gguf(original: bytes, header: int, rng: random.Random) -> bytes:
    data = bytearray(original)
    kind = rng.choice(["flip", "field", "truncate", "magic", "version", "counts", "nesting", "type"])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(header)] ^= 1 << rng.randrange(8)
    elif kind == "field":
        pos = rng.randrange(4, header - 8)
        width = rng.choice([4, 8])
        value = rng.choice([0, 1, 2 ** (8 * width) - 1, 2 ** (8 * width - 1), rng.randrange(2 ** (8 * width))])
        data[pos:pos + width] = value.to_bytes(width, "little")
    elif kind == "truncate":
        return bytes(data[: rng.randrange(len(data))])
    elif kind == "magic":
        data[: 4] = rng.choice([b"GGUG", b"\x00\x00\x00\x00", b"FUGG", b"PK\x03\x04"])
    elif kind == "version":
        data[4:8] = struct.pack("<I", rng.choice([0, 1, 4, 2 ** 32 - 1]))
    elif kind == "counts":
        at = rng.choice([8, 16])   # tensor count, key/value count
        data[at:at + 8] = struct.pack("<Q", rng.choice([0, 1, 2 ** 20 + 1, 2 ** 40, 2 ** 64 - 1]))
    elif kind == "nesting":
        depth = rng.choice([2, 50, 20_000])
        kv = struct.pack("<Q", 4) + b"nest" + struct.pack("<I", 9) \
            + b"".join(struct.pack("<IQ", 9, 1) for _ in range(depth)) + struct.pack("<IQ", 4, 0)
        count = struct.unpack_from("<Q", data, 16)[0]
        data[16:24] = struct.pack("<Q", count + 1)
        data[24:24] = kv
    else:   # an unknown value type for the first key
        key_len = struct.unpack_from("<Q", data, 24)[0]
        data[32 + key_len:36 + key_len] = struct.pack("<I", rng.choice([13, 99, 2 ** 31]))
    return bytes(data)


def _expect_clean(what: str, call: Callable[[], object]) -> None:
    with _deadline(what):
        try:
            call()
        except EdgeAssistantError as exc:
            assert "\n" not in str(exc), f"{what}: {exc!r}"
        except Exception as exc:  # noqa: BLE001 - the point of the test: nothing else may escape
            raise AssertionError(f"{what}: {type(exc).__name__}: {exc} (FUZZ_SEED={SEED})") from exc


def _read_fully(path: Path) -> None:
    info = read_gguf_info(path, tensors=True)
    info.check_complete()
    assert not math.isnan(float(info.file_size))


def test_mutated_gguf_bases_give_success_or_one_line(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    base = _tiny_base(tmp_path / "base.gguf")
    original, header = base.read_bytes(), _header_length(base)
    for case in range(300):
        path = tmp_path / "m.gguf"
        path.write_bytes(_mutated_gguf(original, header, rng))
        _expect_clean(f"base case {case}", lambda: _read_fully(path))
        if case % 25 == 0:   # and the whole `bundle create` path, now and then
            out = tmp_path / f"out{case}"
            _run_cli(["bundle", "create", "--base", str(path), "--out", str(out), "--level", "1"], f"create {case}")
            assert not out.exists() or (out / "manifest.json").is_file()


def test_mutated_adapters_give_success_or_one_line(tmp_path: Path) -> None:
    from tests.support.lora import write_random_lora

    rng = random.Random(SEED + 1)
    base = _tiny_base(tmp_path / "base.gguf")
    base_info = read_gguf_info(base, tensors=True)
    adapter = write_random_lora(tmp_path / "a.gguf", base, rank=2, base_sha256="0" * 64)
    original, header = adapter.read_bytes(), _header_length(adapter)
    for case in range(300):
        path = tmp_path / "m.gguf"
        path.write_bytes(_mutated_gguf(original, header, rng))
        _expect_clean(f"adapter case {case}", lambda: inspect_adapter(path, base_info))
