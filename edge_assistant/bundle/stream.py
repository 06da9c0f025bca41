"""Bounded zstd decompression that hashes (and optionally writes) as it streams.

Shared by ``verify`` (hash only) and ``unpack`` (hash and write). The stream is
never trusted: at most ``expected_size`` bytes are ever handed on, one byte past
that is an error (a stream that decompresses past the manifest's size stops
there), and a stream that ends early is an error.

Decompression runs on the calling thread and hashing + writing on a second one
(zstd and hashlib both release the GIL on large buffers), so the two overlap and
throughput approaches ``zstd -d``. A small bounded queue keeps memory flat.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable

import zstandard

from ..errors import IntegrityError

if TYPE_CHECKING:
    from hashlib import _Hash

# 256 KiB chunks stay in the CPU cache between decompressing and hashing; measured
# here faster than 1-4 MiB chunks (benchmarks/bundle_unpack.py).
CHUNK = 256 << 10        # bytes asked of the decompressor per step
QUEUE_DEPTH = 16         # chunks in flight between the two threads (memory: ~4 MiB)

_DONE = None


class _HashingReader:
    """A file wrapper that hashes the packed bytes as zstd reads them."""

    def __init__(self, raw: BinaryIO, digest: "_Hash") -> None:
        self.raw = raw
        self.digest = digest

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.digest.update(data)
        return data

    def drain(self) -> None:
        """Hash whatever zstd did not read, so the packed digest covers the whole file."""
        while data := self.raw.read(CHUNK):
            self.digest.update(data)


class _Consumer(threading.Thread):
    """Hashes and writes chunks off the decompressing thread."""

    def __init__(self, sink: BinaryIO | None, progress: Callable[[int], None] | None) -> None:
        super().__init__(name="unpack-writer", daemon=True)
        self.sink = sink
        self.progress = progress
        self.digest = hashlib.sha256()
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUE_DEPTH)
        self.error: BaseException | None = None

    def run(self) -> None:
        while (chunk := self.queue.get()) is not _DONE:
            if self.error is not None:
                continue  # keep draining so the producer never blocks on a full queue
            try:
                self.digest.update(chunk)
                if self.sink is not None:
                    self.sink.write(chunk)
                if self.progress is not None:
                    self.progress(len(chunk))
            except BaseException as exc:  # re-raised on the producer's thread
                self.error = exc

    def put(self, chunk: bytes) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(chunk)

    def finish(self) -> None:
        self.queue.put(_DONE)
        self.join()
        if self.error is not None:
            raise self.error


def decompress_bounded(packed: Path, expected_size: int, *, sink: BinaryIO | None = None,
                       progress: Callable[[int], None] | None = None,
                       packed_digest: "_Hash | None" = None) -> str:
    """Decompress ``packed`` into ``sink`` (if given); return the sha256 of the output.

    Raises IntegrityError if the stream is corrupt, ends before ``expected_size``
    bytes or holds more than that. ``packed_digest`` (if given) is updated with
    every byte of the packed file, so one read serves both hashes.
    """
    consumer = _Consumer(sink, progress)
    consumer.start()
    try:
        with open(packed, "rb") as raw:
            source: BinaryIO | _HashingReader = _HashingReader(raw, packed_digest) if packed_digest else raw
            reader = zstandard.ZstdDecompressor().stream_reader(source, read_size=CHUNK, read_across_frames=True)
            total = 0
            try:
                while True:
                    # Ask for at most one byte past the promised size: enough to detect overflow.
                    chunk = reader.read(min(CHUNK, expected_size - total + 1))
                    if not chunk:
                        break
                    if total + len(chunk) > expected_size:
                        consumer.put(chunk[: expected_size - total])  # up to the size, not a byte more
                        raise IntegrityError(
                            f"{packed.name} decompresses to more than the manifest's {expected_size} bytes "
                            "(stopped there)", hint="the bundle is corrupt or tampered with; re-download or rebuild it")
                    total += len(chunk)
                    consumer.put(chunk)
            except zstandard.ZstdError as exc:
                raise IntegrityError(f"{packed.name} is not a valid zstd stream ({exc})",
                                     hint="the bundle is corrupt; re-download or rebuild it") from exc
            finally:
                if isinstance(source, _HashingReader):
                    source.drain()
            if total < expected_size:
                raise IntegrityError(
                    f"{packed.name} ends after {total} of {expected_size} bytes (truncated)",
                    hint="the bundle is incomplete; re-download or rebuild it")
    except BaseException:
        consumer.queue.put(_DONE)
        consumer.join()
        raise
    consumer.finish()
    return consumer.digest.hexdigest()
