"""`pull` reads each downloaded file once to check it: the deep check reuses the hashes pull took."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edge_assistant.bundle.contents import promised_files
from edge_assistant.bundle.manifest import load_manifest
from edge_assistant.errors import IntegrityError
from tests.integration.fakehub import FakeHub
from tests.integration.hubkit import REPO, files_of
from tests.support.hashreads import counting_hash_reads


@pytest.fixture
def hub(published: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FakeHub() as hub:
        hub.publish_folder(REPO, published)
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        yield hub


@contextmanager
def counting_file_reads() -> Iterator[Counter[str]]:
    """Whole reads of each file, by name: hashing it, or decompressing it in the deep check."""
    from edge_assistant.bundle import verify

    by_name: Counter[str] = Counter()
    real = verify.decompress_bounded

    def decompressing(packed, *args, **kwargs):  # type: ignore[no-untyped-def]
        by_name[Path(packed).name] += 1
        return real(packed, *args, **kwargs)

    with counting_hash_reads() as hashed, pytest.MonkeyPatch.context() as patch:
        patch.setattr(verify, "decompress_bounded", decompressing)
        yield by_name
        by_name.update(path.name for path in hashed.elements())


def test_pull_reads_every_file_once_to_check_it(hub: FakeHub, published: Path, tmp_path: Path) -> None:
    from edge_assistant.bundle.hub import pull_bundle

    with counting_file_reads() as reads:
        installed = pull_bundle(REPO, dest_root=tmp_path / "bundles")

    names = sorted(Path(f.path).name for f in promised_files(load_manifest(installed)))
    assert len(names) >= 3, names   # the packed base, a modifier and the router's files
    assert dict(reads) == {name: 1 for name in names}
    assert files_of(installed) == {k: v for k, v in files_of(published).items() if k != "REPORT.md"}


def test_a_packed_base_with_wrong_bytes_is_still_caught_and_deleted(hub: FakeHub, tmp_path: Path) -> None:
    from edge_assistant import paths
    from edge_assistant.bundle.hub import pull_bundle

    hub.corrupt.add("base.gguf.zst")

    with pytest.raises(IntegrityError, match=r"base\.gguf\.zst.*sha256.*nothing was installed"):
        pull_bundle(REPO, dest_root=tmp_path / "bundles")

    assert not (tmp_path / "bundles" / "tiny").exists()
    staged = [p.name for p in (paths.data_dir() / "downloads").rglob("*") if p.is_file()]
    assert "base.gguf.zst" not in staged and "code.gguf" in staged, "only the bad file is fetched again"
