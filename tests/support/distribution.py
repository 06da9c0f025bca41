"""A real installed Python distribution, made in a test folder: a package with data files and its
``.dist-info``, found by ``importlib.metadata`` once the folder is on ``sys.path`` (or PYTHONPATH)."""

from __future__ import annotations

import shutil
from pathlib import Path


def install_distribution(site: Path, name: str, files: dict[str, Path], version: str = "1.0") -> Path:
    """Copy ``files`` (path inside ``site`` -> source) into ``site`` with a dist-info; returns ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    records = []
    for rel, src in files.items():
        target = site / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        records.append(f"{rel},,")
    package = next(iter(files)).split("/")[0]
    (site / package / "__init__.py").touch()
    records.append(f"{package}/__init__.py,,")
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(f"{package}\n")
    (info / "RECORD").write_text("\n".join([*records, f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]) + "\n")
    return site
