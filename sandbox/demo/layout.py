"""The demo sandbox on disk: its directories, the stamp that says it is complete, the sidecar.

A sandbox is a directory with ``store/`` (the backup objects and the encryption sidecar
services.storage.FileStore reads), ``manifests/``, ``config.yaml`` and the ``SANDBOX``
stamp, written last. Shared by the build, the roll-forward and ``prepare_sandbox``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sandbox.demo.story import FORMAT_VERSION
from services.operator import BACKUP_DIR, DEFAULT_S3_PREFIX
from services.storage import SIDECAR

STAMP = "SANDBOX"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Sandbox:
    root: Path
    config_path: Path
    store_url: str
    manifests: Path
    clusters: tuple[str, ...]


def sandbox_for(root: Path, clusters: tuple[str, ...]) -> Sandbox:
    return Sandbox(
        root=root,
        config_path=root / "config.yaml",
        store_url=f"file://{root / 'store' / DEFAULT_S3_PREFIX}",
        manifests=root / "manifests",
        clusters=clusters,
    )


def load_sandbox(root: Path) -> Sandbox | None:
    """The sandbox in ``root`` when its stamp says it is complete and of this format."""
    try:
        stamp = json.loads((root / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("format") != FORMAT_VERSION:
        return None
    clusters = tuple(str(c) for c in stamp.get("clusters") or ())
    sandbox = sandbox_for(root, clusters)
    store = root / "store" / DEFAULT_S3_PREFIX
    if not (sandbox.config_path.is_file() and sandbox.manifests.is_dir() and store.is_dir()):
        return None
    if not clusters or not all((store / c).is_dir() for c in clusters):
        return None
    return sandbox


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def store_keys(store: Path) -> list[str]:
    return sorted(p.relative_to(store).as_posix() for p in store.glob(f"*/*/{BACKUP_DIR}/*.sql.gz"))


def read_sidecar(store: Path) -> dict[str, str]:
    try:
        data = json.loads((store / SIDECAR).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    return {
        rel: str(v.get("sse", ""))
        for rel, v in (data.items() if isinstance(data, dict) else ())
        if isinstance(v, dict)
    }


def write_sidecar(store: Path, sse: dict[str, str]) -> None:
    """What ``aws s3api head-object`` would say of each object's encryption (FileStore)."""
    lines = [f"  {json.dumps(rel)}: {json.dumps({'sse': v})}" for rel, v in sorted(sse.items())]
    write_atomically(store / SIDECAR, "{\n" + ",\n".join(lines) + "\n}\n")


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileExistsError:
        pass  # an interrupted roll-forward got this far already
    except OSError:
        shutil.copy2(source, target)


def iter_backups(root: Path) -> Iterator[Path]:
    """Every backup object of a sandbox (for tests and checks)."""
    yield from sorted((root / "store" / DEFAULT_S3_PREFIX).glob("*/*/logical_backups/*.sql.gz"))
