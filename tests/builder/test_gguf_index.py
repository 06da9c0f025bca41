"""The builder's GGUF view (builder/gguf_index.py, over bundle/ggufmeta.py) against gguf.GGUFReader, the
gguf package's own reader, used here only as an independent reference on files small enough to be quick."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from edge_assistant.builder.gguf_index import map_file, read_metadata, read_tensor_index
from edge_assistant.errors import BundleError, ConversionError
from tests.support.gguf_files import NOT_UTF8, write_small_gguf

def test_the_tensor_index_and_its_views_match_the_gguf_reader(tmp_path: Path) -> None:
    path = write_small_gguf(tmp_path / "m.gguf")
    reference = gguf.GGUFReader(path)
    index = read_tensor_index(path)
    assert [(t.name, t.qtype, t.shape, t.offset, t.nbytes) for t in index] == [
        (t.name, t.tensor_type, tuple(int(d) for d in t.shape), int(t.data_offset), int(t.n_bytes))
        for t in reference.tensors]
    buffer = map_file(path)
    for ours, theirs in zip(index, reference.tensors):
        view = ours.view(buffer)
        assert view.tobytes() == np.asarray(theirs.data).tobytes()
        if ours.qtype.name in ("F32", "F16"):
            assert view.shape == tuple(reversed(ours.shape))
            assert np.array_equal(view, ours.read(path))


def test_typed_metadata_is_what_the_writer_wrote_with_strings_as_stored(tmp_path: Path) -> None:
    path = write_small_gguf(tmp_path / "m.gguf")
    reference = gguf.GGUFReader(path)
    ours = read_metadata(path)
    theirs = {k: f for k, f in reference.fields.items() if not k.startswith("GGUF.")}
    assert list(ours) == list(theirs)
    for key, field in theirs.items():
        assert ours[key].vtype == field.types[0], key
        assert ours[key].sub_type == (field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None), key
    assert ours["test.raw"].value == NOT_UTF8
    assert ours["general.architecture"].value == b"llama"
    assert ours["llama.block_count"].value == 2 and ours["test.negative"].value == -(2 ** 40)
    assert ours["llama.rope.freq_base"].value == pytest.approx(10000.5)
    assert ours["tokenizer.ggml.add_bos_token"].value is True
    assert ours["tokenizer.ggml.tokens"].value == [f"tok{i}".encode() for i in range(300)]
    assert ours["tokenizer.ggml.scores"].value == pytest.approx([float(i) / 3 for i in range(300)])
    assert ours["tokenizer.ggml.token_type"].value == [1 + i % 3 for i in range(300)]
    assert ours["test.flags"].value == [True, False, True]
    assert set(read_metadata(path, "tokenizer.")) == {k for k in theirs if k.startswith("tokenizer.")}


def test_a_file_cut_inside_the_tensor_table_is_one_clear_error(tmp_path: Path) -> None:
    whole = write_small_gguf(tmp_path / "m.gguf").read_bytes()
    data_start = int(gguf.GGUFReader(tmp_path / "m.gguf").data_offset)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole[: data_start - 40])
    with pytest.raises(BundleError, match="truncated") as info:
        read_tensor_index(cut)
    assert "\n" not in str(info.value)


def test_a_view_of_data_past_the_end_of_the_file_is_refused(tmp_path: Path) -> None:
    path = write_small_gguf(tmp_path / "m.gguf")
    index = read_tensor_index(path)
    short = tmp_path / "short.gguf"
    short.write_bytes(path.read_bytes()[: index[-1].offset + 8])   # the last tensor loses most of its bytes
    with pytest.raises(ConversionError, match="output_norm.weight"):
        read_tensor_index(short)[-1].view(map_file(short))


def test_an_imatrix_reads_back_through_the_index_divided_by_its_counts(tmp_path: Path) -> None:
    from edge_assistant.builder.importance import read_imatrix, write_imatrix

    rng = np.random.default_rng(1)
    vectors = {"blk.0.attn_q.weight": rng.random(64).astype(np.float32),
               "blk.0.ffn_down.weight": rng.random(128).astype(np.float32)}
    got = read_imatrix(write_imatrix(tmp_path / "imatrix.gguf", vectors))
    assert set(got) == set(vectors)
    assert all(np.array_equal(got[k], vectors[k]) for k in vectors)

    counted = tmp_path / "counted.gguf"   # as llama-imatrix writes it: sums over 4 chunks, counts = 4
    writer = gguf.GGUFWriter(str(counted), arch="")
    writer.kv_data[0].clear()
    writer.add_string("general.type", "imatrix")
    writer.add_tensor("blk.0.attn_q.weight.in_sum2", (4 * vectors["blk.0.attn_q.weight"]).reshape(1, -1))
    writer.add_tensor("blk.0.attn_q.weight.counts", np.full((1, 1), 4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert np.allclose(read_imatrix(counted)["blk.0.attn_q.weight"], vectors["blk.0.attn_q.weight"], rtol=1e-6)


def test_an_imatrix_that_is_not_gguf_is_one_conversion_error(tmp_path: Path) -> None:
    from edge_assistant.builder.importance import read_imatrix

    bad = tmp_path / "imatrix.dat"
    bad.write_bytes(b"\x00" * 64)   # llama.cpp's old binary imatrix format is not GGUF
    with pytest.raises(ConversionError, match="cannot read the imatrix file") as info:
        read_imatrix(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(ConversionError, match="cannot read the imatrix file"):
        read_imatrix(tmp_path / "missing.gguf")
