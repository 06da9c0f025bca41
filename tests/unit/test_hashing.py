"""sha256_file and its hash_once scope: one read per unchanged file, never a stale digest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from edge_assistant.durable import write_bytes
from edge_assistant.hashing import CHUNK, hash_once, sha256_file
from tests.support.hashreads import counting_hash_reads


@pytest.fixture
def big(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(2 * CHUNK + 12345)   # three chunks, the last one short
    path = tmp_path / "big.gguf"
    path.write_bytes(data)
    return path, data


def test_the_digest_is_sha256_of_the_bytes_and_progress_counts_every_byte(big: tuple[Path, bytes]) -> None:
    path, data = big
    steps: list[int] = []

    assert sha256_file(path, steps.append) == hashlib.sha256(data).hexdigest()
    assert sum(steps) == len(data) and len(steps) == 3


def test_outside_a_scope_every_call_reads_the_file(big: tuple[Path, bytes]) -> None:
    path, _ = big
    with counting_hash_reads() as reads:
        sha256_file(path)
        sha256_file(path)
    assert reads[path.resolve()] == 2


def test_inside_a_scope_an_unchanged_file_is_read_once(big: tuple[Path, bytes]) -> None:
    path, data = big
    steps: list[int] = []
    with counting_hash_reads() as reads, hash_once():
        first = sha256_file(path)
        with hash_once():   # a nested scope shares the outer one's digests
            again = sha256_file(str(path), steps.append)
        third = sha256_file(path)
    assert first == again == third == hashlib.sha256(data).hexdigest()
    assert reads[path.resolve()] == 1
    assert steps == [len(data)], "a bar still completes when the digest is known"


def test_a_file_rewritten_in_place_right_after_hashing_is_hashed_again(big: tuple[Path, bytes]) -> None:
    path, data = big
    flipped = bytes([data[0] ^ 0xFF]) + data[1:]
    with hash_once():
        assert sha256_file(path) == hashlib.sha256(data).hexdigest()
        with open(path, "r+b") as f:   # same size, same inode, within the same clock tick
            f.write(flipped[:1])
        assert sha256_file(path) == hashlib.sha256(flipped).hexdigest()


def test_a_file_replaced_by_a_rename_is_hashed_again(big: tuple[Path, bytes]) -> None:
    path, data = big
    other = os.urandom(len(data))
    with hash_once():
        sha256_file(path)
        write_bytes(path, other)
        assert sha256_file(path) == hashlib.sha256(other).hexdigest()


def test_when_the_scope_ends_the_digests_are_forgotten(big: tuple[Path, bytes]) -> None:
    path, _ = big
    with counting_hash_reads() as reads:
        with hash_once():
            sha256_file(path)
        sha256_file(path)
        with hash_once():
            sha256_file(path)
    assert reads[path.resolve()] == 3
