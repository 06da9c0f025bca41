"""bundle create: what it writes, what it refuses, and that a failure leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import zstandard

from edge_assistant.bundle.manifest import load_manifest
from edge_assistant.bundle.pack import ModifierInput, create_bundle
from edge_assistant.errors import BundleError, ModifierError, UsageError
from tests.support.bundles import file_sha256, small_base, smollm2_bundle
from tests.support.lora import write_random_lora


@pytest.fixture(scope="session")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path) -> Path:
    return smollm2_bundle(tmp_path_factory.getbasetemp() / "smollm2-bundle", smollm2_gguf)


@pytest.fixture(scope="session")
def base_sha(smollm2_gguf: Path) -> str:
    return file_sha256(smollm2_gguf)


@pytest.fixture
def tiny_base(tmp_path: Path, smollm2_gguf: Path) -> Path:
    return small_base(tmp_path / "tiny-base.gguf", smollm2_gguf)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_manifest_records_the_hashes_and_sizes_of_what_was_packed(bundle_dir: Path, smollm2_gguf: Path,
                                                                  base_sha: str) -> None:
    manifest = load_manifest(bundle_dir)
    packed = bundle_dir / "base.gguf.zst"
    assert manifest.base.sha256 == base_sha
    assert manifest.base.size == smollm2_gguf.stat().st_size
    assert manifest.base.packed_size == packed.stat().st_size
    assert manifest.base.packed_sha256 == file_sha256(packed)
    assert (manifest.base.arch, manifest.base.quant_type, manifest.base.context_length) == ("llama", "Q4_1", 8192)
    # The packed file is a real zstd stream of the original bytes (decoded here by zstandard directly).
    digest = hashlib.sha256()
    with open(packed, "rb") as f:
        reader = zstandard.ZstdDecompressor().stream_reader(f)
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
    assert digest.hexdigest() == base_sha
    with open(packed, "rb") as f:
        params = zstandard.get_frame_parameters(f.read(18))
    assert params.content_size == manifest.base.size and params.has_checksum


def test_modifier_is_copied_with_rank_alpha_and_binding(bundle_dir: Path, base_sha: str) -> None:
    manifest = load_manifest(bundle_dir)
    (code,) = manifest.modifiers
    assert (code.name, code.file, code.rank, code.alpha) == ("code", "modifiers/code.gguf", 8, 32.0)
    assert code.base_sha256 == base_sha
    assert code.sha256 == file_sha256(bundle_dir / "modifiers" / "code.gguf")
    assert code.sha256 == file_sha256(bundle_dir.parent / "code.gguf")  # the adapter the fixture wrote


def test_router_files_and_report_are_copied_with_their_hashes(tmp_path: Path, tiny_base: Path) -> None:
    router = tmp_path / "router-src"
    (router / "model").mkdir(parents=True)
    (router / "routes.json").write_text('{"code": ["python"]}')
    (router / "model" / "embeddings.npy").write_bytes(bytes(range(256)) * 10)
    report = tmp_path / "REPORT.md"
    report.write_text("# quality\nppl 12.3\n")
    out = create_bundle(tiny_base, tmp_path / "b", router_dir=router, router_threshold=0.4, report=report,
                        provenance={"recipe": "demo.toml"}, quality={"ppl": 12.3})
    manifest = load_manifest(out)
    assert manifest.router is not None and manifest.router.threshold == 0.4
    assert manifest.router.files == {
        "model/embeddings.npy": hashlib.sha256(bytes(range(256)) * 10).hexdigest(),
        "routes.json": hashlib.sha256(b'{"code": ["python"]}').hexdigest(),
    }
    assert (out / "router" / "model" / "embeddings.npy").read_bytes() == bytes(range(256)) * 10
    assert (out / "REPORT.md").read_text() == "# quality\nppl 12.3\n"
    assert manifest.provenance["recipe"] == "demo.toml"
    assert manifest.provenance["bundle_create"]["zstd_level"] == 3
    assert manifest.quality == {"ppl": 12.3}


def test_a_router_without_its_threshold_is_refused_before_anything_is_written(tmp_path: Path,
                                                                               tiny_base: Path) -> None:
    router = tmp_path / "router-src"
    router.mkdir()
    (router / "routes.json").write_text("{}")
    with pytest.raises(UsageError, match="a router needs its threshold"):
        create_bundle(tiny_base, tmp_path / "b", router_dir=router)
    assert not (tmp_path / "b").exists() and _leftovers(tmp_path) == []


def test_a_text_file_as_base_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    base = tmp_path / "model.gguf"
    base.write_text("not a model\n" * 100)
    with pytest.raises(BundleError, match="model.gguf is not a GGUF file"):
        create_bundle(base, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_an_adapter_as_base_is_refused(tmp_path: Path, smollm2_gguf: Path) -> None:
    adapter = write_random_lora(tmp_path / "a.gguf", smollm2_gguf, rank=2, base_sha256="0" * 64)
    with pytest.raises(BundleError, match="is a LoRA adapter, not a base model"):
        create_bundle(adapter, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_adapter_bound_to_another_base_is_refused(tmp_path: Path, smollm2_gguf: Path) -> None:
    adapter = write_random_lora(tmp_path / "a.gguf", smollm2_gguf, rank=2, base_sha256="ab" * 32)
    with pytest.raises(ModifierError, match=r"'code'.*is bound to base abababababab…"):
        create_bundle(smollm2_gguf, tmp_path / "out", modifiers=[ModifierInput("code", adapter)])
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_an_unbound_adapter_needs_an_explicit_binding_to_this_base(tmp_path: Path, tiny_base: Path,
                                                                   smollm2_gguf: Path) -> None:
    adapter = write_random_lora(tmp_path / "a.gguf", smollm2_gguf, rank=2)  # no base sha256 key
    with pytest.raises(ModifierError, match="does not say which base.*--bind-unverified"):
        create_bundle(tiny_base, tmp_path / "out", modifiers=[ModifierInput("code", adapter)])
    with pytest.raises(ModifierError, match="is bound to base"):
        create_bundle(tiny_base, tmp_path / "out",
                      modifiers=[ModifierInput("code", adapter, base_sha256="cd" * 32)])
    tiny_sha = file_sha256(tiny_base)
    out = create_bundle(tiny_base, tmp_path / "out", modifiers=[ModifierInput("code", adapter, base_sha256=tiny_sha)])
    assert load_manifest(out).modifiers[0].base_sha256 == tiny_sha


def test_the_manifest_records_each_modifier_s_kind_from_its_adapter_file(tmp_path: Path, tiny_base: Path,
                                                                        smollm2_gguf: Path) -> None:
    sha = file_sha256(tiny_base)
    plain = write_random_lora(tmp_path / "plain.gguf", smollm2_gguf, rank=2, base_sha256=sha)
    activated = write_random_lora(tmp_path / "activated.gguf", smollm2_gguf, rank=2, base_sha256=sha,
                                  invocation_tokens=[1, 520, 9531, 198])
    out = create_bundle(tiny_base, tmp_path / "out", modifiers=[ModifierInput("code", plain),
                                                                 ModifierInput("shell", activated)])
    assert {m.name: m.kind for m in load_manifest(out).modifiers} == {"code": "lora", "shell": "alora"}
    assert json.loads((out / "manifest.json").read_text())["modifiers"][1]["kind"] == "alora"


@pytest.mark.parametrize("value", [[], 7])
def test_an_adapter_with_a_malformed_invocation_sequence_is_refused(tmp_path: Path, tiny_base: Path,
                                                                    value: object) -> None:
    import gguf
    import numpy as np

    path = tmp_path / "bad.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", 16.0)
    writer.add_string("edge_assistant.base_sha256", file_sha256(tiny_base))
    if isinstance(value, list):  # an empty array (the gguf writer refuses to write one itself)
        writer.add_key_value("adapter.alora.invocation_tokens", [0], gguf.GGUFValueType.ARRAY,
                             gguf.GGUFValueType.UINT32)
    else:  # a plain integer, not the uint32 array llama.cpp reads
        writer.add_uint32("adapter.alora.invocation_tokens", int(value))
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((2, 576), dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((576, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    if isinstance(value, list):
        _empty_array(path, b"adapter.alora.invocation_tokens")
    with pytest.raises(ModifierError, match="malformed adapter.alora.invocation_tokens"):
        create_bundle(tiny_base, tmp_path / "out", modifiers=[ModifierInput("code", path)])
    assert not (tmp_path / "out").exists()


def _empty_array(path: Path, key: bytes) -> None:
    """Turn the one-element uint32 array under ``key`` into an empty one: count 0 and its 4 bytes removed
    (the header reader never looks at tensor data, so the shifted data section does not matter here)."""
    data = bytearray(path.read_bytes())
    at = data.index(key) + len(key) + 4 + 4  # value type (ARRAY), item type (UINT32)
    assert int.from_bytes(data[at:at + 8], "little") == 1
    data[at:at + 8] = (0).to_bytes(8, "little")
    del data[at + 8:at + 12]
    path.write_bytes(bytes(data))


def test_an_adapter_whose_tensors_do_not_fit_the_base_is_refused(tmp_path: Path, smollm2_gguf: Path) -> None:
    import gguf
    import numpy as np

    path = tmp_path / "wrong.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", 16.0)
    writer.add_string("edge_assistant.base_sha256", "ab" * 32)
    writer.add_tensor("blk.0.attn_q.weight.lora_a", np.zeros((8, 960), dtype=np.float32))  # a 360M's width
    writer.add_tensor("blk.0.attn_q.weight.lora_b", np.zeros((960, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModifierError, match=r"blk.0.attn_q.weight shapes a=\[960, 8\].*do not fit.*\[576, 576\]"):
        create_bundle(smollm2_gguf, tmp_path / "out", modifiers=[ModifierInput("code", path)])


@pytest.mark.parametrize("name", ["auto", "none", "Bad Name", "../x"])
def test_reserved_or_unsafe_modifier_names_are_refused(tmp_path: Path, tiny_base: Path, name: str) -> None:
    with pytest.raises(BundleError, match="is not allowed"):
        create_bundle(tiny_base, tmp_path / "out", modifiers=[ModifierInput(name, tiny_base)])


def test_an_existing_bundle_is_replaced_only_with_force(tmp_path: Path, tiny_base: Path) -> None:
    out = create_bundle(tiny_base, tmp_path / "b", name="first")
    with pytest.raises(BundleError, match="already exists.*--force"):
        create_bundle(tiny_base, out, name="second")
    assert load_manifest(out).name == "first"
    create_bundle(tiny_base, out, name="second", force=True)
    assert load_manifest(out).name == "second"
    assert _leftovers(tmp_path) == []  # the old bundle and the temp folder are gone


def test_force_never_replaces_a_folder_that_is_not_a_bundle(tmp_path: Path, tiny_base: Path) -> None:
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(BundleError, match="is not a bundle; --force only replaces bundles"):
        create_bundle(tiny_base, precious, force=True)
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_a_create_interrupted_mid_pack_leaves_nothing_under_the_final_name(tmp_path: Path, tiny_base: Path) -> None:
    from contextlib import contextmanager

    @contextmanager
    def interrupting(description: str, total: int):
        def advance(n: int) -> None:
            raise KeyboardInterrupt  # the user pressed Ctrl-C during compression
        yield advance

    with pytest.raises(KeyboardInterrupt):
        create_bundle(tiny_base, tmp_path / "out", progress=interrupting)
    assert not (tmp_path / "out").exists()
    assert _leftovers(tmp_path) == []


def test_manifest_json_is_plain_relative_paths(bundle_dir: Path) -> None:
    data = json.loads((bundle_dir / "manifest.json").read_text())
    files = [data["base"]["file"]] + [m["file"] for m in data["modifiers"]]
    assert files == ["base.gguf.zst", "modifiers/code.gguf"]


def test_an_unwritable_output_place_is_one_clear_error(tmp_path: Path, tiny_base: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output's parent should be")
    with pytest.raises(BundleError, match=r"cannot write bundle .*not-a-folder/b: .* — check the folder's permissions"):
        create_bundle(tiny_base, blocker / "b")
    assert _leftovers(tmp_path) == []
