"""Zstd measurements, the byte-grouping transform, size targets and the report table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_assistant.builder.size_target import SizeTarget, parse_target
from edge_assistant.errors import UsageError
from tests.support.compression import CompressionRow, compression_report
from tests.support.zstd_study import (
    BLOCK_FIELDS,
    ZstdLevel,
    choose_level,
    group_tensor_bytes,
    measure_zstd,
    ungroup_tensor_bytes,
)

pytestmark = pytest.mark.builder


@pytest.mark.parametrize("gguf_type", sorted(BLOCK_FIELDS))
def test_byte_grouping_is_lossless_for_every_layout(gguf_type: str) -> None:
    block = BLOCK_FIELDS[gguf_type][0]
    raw = np.random.default_rng(1).integers(0, 256, size=block * 37, dtype=np.uint8).tobytes()
    grouped = group_tensor_bytes(raw, gguf_type)
    assert len(grouped) == len(raw)
    assert ungroup_tensor_bytes(grouped, gguf_type) == raw
    assert grouped != raw  # it really permutes


def test_q4_0_grouping_puts_all_block_scales_first() -> None:
    blocks = np.zeros((3, 18), dtype=np.uint8)
    blocks[:, :2] = [[1, 2], [3, 4], [5, 6]]
    grouped = group_tensor_bytes(blocks.tobytes(), "Q4_0")
    assert grouped[:6] == bytes([1, 2, 3, 4, 5, 6]) and set(grouped[6:]) == {0}


def test_zstd_measurement_round_trips_and_orders_levels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    # Half compressible text, half random bytes: like a GGUF's metadata and weights.
    data = (b"tokenizer.ggml.tokens " * 20000) + rng.integers(0, 256, size=400000, dtype=np.uint8).tobytes()
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    levels = measure_zstd(path, (1, 9))
    assert [m.level for m in levels] == [1, 9]
    assert all(0.4 < m.ratio < 0.7 for m in levels)
    assert levels[1].packed_size <= levels[0].packed_size
    assert all(m.decompress_mb_s > 0 and m.compress_s > 0 for m in levels)


def test_choose_level_moves_to_a_slower_level_only_when_it_saves_enough_per_second() -> None:
    mb = 100_000_000
    measured = [ZstdLevel(1, mb, 95_000_000, 0.5, 900.0), ZstdLevel(3, mb, 94_000_000, 0.8, 950.0),
                ZstdLevel(19, mb, 93_800_000, 40.0, 1000.0)]
    assert choose_level(measured).level == 3  # 19 saves only 0.2% more for 50x the time
    assert choose_level(measured, tolerance=0.0).level == 3  # 0.2 MB for 39 s: 5 kB/s is too little
    assert choose_level(measured, tolerance=0.0, min_bytes_per_s=0).level == 19
    assert choose_level(measured, tolerance=0.02).level == 1


@pytest.mark.parametrize("text,expected", [
    ("95000000", SizeTarget(bytes=95_000_000)), ("95MB", SizeTarget(bytes=95_000_000)),
    ("90MiB", SizeTarget(bytes=90 * 2**20)), ("4.5bpw", SizeTarget(bits_per_weight=4.5)),
    ("1.5 GB", SizeTarget(bytes=1_500_000_000)),
])
def test_size_targets_parse_bytes_and_bits_per_weight(text: str, expected: SizeTarget) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", ["", "big", "-3MB", "0", "4.5 bits"])
def test_unreadable_size_targets_name_the_accepted_forms(text: str) -> None:
    with pytest.raises(UsageError, match="bpw"):
        parse_target(text)


def _row(qtype: str, awq: bool, ppl: float) -> CompressionRow:
    return CompressionRow(qtype, awq, 100_000_000, 4.5, ppl, ppl - 18.0, 0.05, 0.9, 0.95, 1.0, Path("x"))


def test_report_table_has_every_column_and_the_awq_gap_share() -> None:
    rows = [_row("F16", False, 18.0), _row("Q4_0", False, 23.0), _row("Q4_0", True, 21.0)]
    text = compression_report(rows, zstd_level=3, tokens=1022)
    header = [line for line in text.splitlines() if line.startswith("| type")][0]
    for column in ("size", "bits/weight", "perplexity", "Δperplexity", "KL", "top-1", "zstd ratio", "AWQ"):
        assert column in header
    assert "| Q4_0 | yes | 100.0 | 4.50 | 21.000 | +3.000 |" in text
    assert "| F16 | — |" in text
    assert "Q4_0: AWQ leaves 60% of the perplexity gap" in text
    assert "1022 tokens" in text


def test_build_compress_with_an_unreadable_target_fails_with_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from edge_assistant.cli import main

    result = CliRunner().invoke(main, ["build", "compress", str(tmp_path / "x.gguf"), "--target-size", "big",
                                       "--out", str(tmp_path / "y.gguf")])
    assert result.exit_code == 2
    assert "cannot read the size target" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "y.gguf").exists()
