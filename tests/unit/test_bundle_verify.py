"""bundle verify: every promise of the manifest is checked, and each failure names the file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import zstandard

from edge_assistant.bundle.verify import verify_bundle
from edge_assistant.errors import BundleError, IntegrityError, ManifestError
from tests.support.bundles import copy_bundle, edit_manifest, handmade_bundle, smollm2_bundle


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Path:
    return smollm2_bundle(tmp_path_factory.getbasetemp() / "smollm2-bundle", smollm2_gguf)


@pytest.fixture
def copy(bundle_dir: Path, tmp_path: Path) -> Path:
    return copy_bundle(bundle_dir, tmp_path / "copy")


def _flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x01]))


def test_a_fresh_bundle_verifies_deep_and_quick(bundle_dir: Path) -> None:
    deep = verify_bundle(bundle_dir)
    quick = verify_bundle(bundle_dir, deep=False)
    assert [f.path for f in deep.files] == ["base.gguf.zst", "modifiers/code.gguf"]
    assert deep.deep and not quick.deep
    assert deep.warnings == []


@pytest.mark.parametrize("deep", [True, False])
def test_one_flipped_byte_in_the_packed_base_is_caught(copy: Path, deep: bool) -> None:
    _flip_byte(copy / "base.gguf.zst", 40_000_000)
    with pytest.raises(IntegrityError, match=r"^base.gguf.zst has sha256 .* \(corrupt\)"):
        verify_bundle(copy, deep=deep)


def test_a_truncated_packed_base_is_caught_before_hashing(copy: Path) -> None:
    packed = copy / "base.gguf.zst"
    with open(packed, "r+b") as f:
        f.truncate(packed.stat().st_size - 1000)
    with pytest.raises(IntegrityError, match=r"base.gguf.zst is \d+ bytes, the manifest says \d+ \(truncated"):
        verify_bundle(copy)


def test_a_changed_modifier_is_caught(copy: Path) -> None:
    _flip_byte(copy / "modifiers" / "code.gguf", 100_000)
    with pytest.raises(IntegrityError, match=r"^modifiers/code.gguf has sha256"):
        verify_bundle(copy, deep=False)


def test_a_modifier_bound_to_another_base_is_caught(copy: Path) -> None:
    edit_manifest(copy, lambda m: m["modifiers"][0].update(base_sha256="ab" * 32))
    with pytest.raises(IntegrityError, match=r"modifier 'code' is bound to base abababababab…"):
        verify_bundle(copy, deep=False)


def test_a_missing_modifier_file_is_named(copy: Path) -> None:
    (copy / "modifiers" / "code.gguf").unlink()
    with pytest.raises(BundleError, match="modifiers/code.gguf is missing from the bundle"):
        verify_bundle(copy, deep=False)


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "modifiers/../../x", "C:/x"])
def test_manifest_paths_outside_the_bundle_are_rejected(copy: Path, bad: str) -> None:
    edit_manifest(copy, lambda m: m["modifiers"][0].update(file=bad))
    with pytest.raises(ManifestError, match="modifiers\\[0\\].file"):
        verify_bundle(copy, deep=False)


def test_a_base_path_through_a_symlink_out_of_the_bundle_is_rejected(copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (copy / "escape").symlink_to(outside)
    edit_manifest(copy, lambda m: m["base"].update(file="escape/base.gguf.zst"))
    with pytest.raises(ManifestError, match="resolves outside the bundle"):
        verify_bundle(copy, deep=False)


def test_a_changed_router_file_is_caught_and_an_unlisted_one_is_reported(tmp_path: Path) -> None:
    bundle = handmade_bundle(tmp_path / "b", b"GGUF" + bytes(5000))
    (bundle / "router").mkdir()
    (bundle / "router" / "routes.json").write_text("{}")
    (bundle / "router" / "stray.txt").write_text("?")
    edit_manifest(bundle, lambda m: m.update(router={"dir": "router", "threshold": 0.5,
                                                     "files": {"routes.json": hashlib.sha256(b"{}").hexdigest()}}))
    assert verify_bundle(bundle).warnings == ["router/stray.txt is not listed in the manifest"]
    (bundle / "router" / "routes.json").write_text("{ }")
    with pytest.raises(IntegrityError, match="^router/routes.json has sha256"):
        verify_bundle(bundle)


def test_only_deep_verify_sees_a_valid_stream_of_the_wrong_content(tmp_path: Path) -> None:
    # The packed file matches its recorded hash, but it unpacks to other bytes than promised.
    payload = b"GGUF" + bytes(range(256)) * 400
    other = zstandard.ZstdCompressor().compress(b"GGUF" + bytes(reversed(range(256))) * 400)
    bundle = handmade_bundle(tmp_path / "b", payload, stream=other)
    verify_bundle(bundle, deep=False)
    with pytest.raises(IntegrityError, match=r"base.gguf.zst \(unpacked\) has sha256"):
        verify_bundle(bundle)


def test_deep_verify_stops_a_stream_longer_than_the_manifest_says(tmp_path: Path) -> None:
    payload = b"GGUF" + bytes(100_000)
    bundle = handmade_bundle(tmp_path / "b", payload, size=50_000, sha256=hashlib.sha256(payload[:50_000]).hexdigest())
    seen = []

    from contextlib import contextmanager

    @contextmanager
    def counting(description: str, total: int):
        yield seen.append

    with pytest.raises(IntegrityError, match="decompresses to more than the manifest's 50000 bytes"):
        verify_bundle(bundle, progress=counting)
    assert sum(seen) == 50_000  # everything handed on stopped at the promised size


def test_deep_verify_reports_a_stream_that_ends_early(tmp_path: Path) -> None:
    payload = b"GGUF" + bytes(range(256)) * 4000
    stream = zstandard.ZstdCompressor(level=1).compress(payload)
    bundle = handmade_bundle(tmp_path / "b", payload, stream=stream[: len(stream) // 2])
    with pytest.raises(IntegrityError, match="base.gguf.zst"):
        verify_bundle(bundle)
