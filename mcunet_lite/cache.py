"""The cache of generated data sets: synthetic images and detection boxes are costly to render and
the same for the same stream, so they are kept as `.npz` files named by what made them.

A set is stored as `KEY-nN.npz`; a request for n <= N items of the same key reads the first n
(scene i of a stream never depends on how many were asked for). Files are written atomically, so
concurrent processes (DDP ranks, parallel test workers) never read half a file.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .safeio import write_atomic


def cache_dir() -> Path:
    """Where generated sets are cached: $MCUNET_LITE_CACHE, else ~/.cache/mcunet-lite."""
    return Path(os.environ.get("MCUNET_LITE_CACHE") or Path.home() / ".cache" / "mcunet-lite")


def load_prefix(key: str, n: int) -> dict[str, np.ndarray] | None:
    """The arrays of the smallest cached set of `key` with at least `n` items, or None."""
    sizes = sorted(int(p.stem.rsplit("-n", 1)[1]) for p in cache_dir().glob(f"{key}-n*.npz"))
    hit = next((m for m in sizes if m >= n), None)
    if hit is None:
        return None
    with np.load(cache_dir() / f"{key}-n{hit}.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def store(key: str, n: int, **arrays: np.ndarray) -> None:
    """Store a set of `n` items under `key`."""
    write_atomic(cache_dir() / f"{key}-n{n}.npz", lambda tmp: np.savez(tmp, **arrays))
