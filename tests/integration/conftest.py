"""Fixtures of the pull tests: one small real bundle published on a fake hub, and the CLI pointed at it.

A module that needs another hub (push, in-process pulls) defines its own ``hub``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.integration.fakehub import FakeHub
from tests.integration.hubkit import REPO, Cli, make_bundle


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle the fake hub serves as REPO (made once per module)."""
    return make_bundle(tmp_path_factory.mktemp("published") / "tiny")


@pytest.fixture
def hub(published: Path) -> Iterator[FakeHub]:
    with FakeHub() as hub:
        hub.publish_folder(REPO, published)
        yield hub


@pytest.fixture
def cli(tmp_path: Path, hub: FakeHub) -> Cli:
    return Cli(tmp_path, endpoint=hub.url)
