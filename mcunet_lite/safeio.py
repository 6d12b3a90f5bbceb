"""Reading untrusted files within bounds, and writing outputs without losing the user's work.

DESIGN.md section 9: files and paths come from anywhere. Reads check sizes before they allocate
(a model or .npy header cannot make the kit read or allocate gigabytes). Output folders are new,
empty or marked as the kit's own (`MARKER`); anything else is refused unless the user passes
`--force`. An output file never replaces an existing file unless the user passes `--force` (a
checkpoint command's `--resume` continues the file instead), never replaces one of the command's
inputs, its folder must exist, and the file written is exactly the path given (no suffix
appended), so the path printed is the path written.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import UserError
from .validate import printable

MARKER = ".mcunet-lite"  # in a folder the kit created: {"kind": ..., "files": [...]}


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write `path` through `write(tmp)` on a temporary sibling, then rename it into place: a reader
    (another process, a resumed run after a crash) sees the old file or the new one, never half of
    one. Checkpoints, published assets and cached data sets are written this way."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _mib(n: int) -> str:
    return f"{n / 2 ** 20:.1f} MiB"


def _regular(path: str | Path, what: str) -> None:
    """Refuse, before opening it, a path that is not a regular file (a device, FIFO or folder)."""
    if not Path(path).is_file() and Path(path).exists():
        raise UserError(f"{what} '{path}' is not a regular file")


def read_bounded(path: str | Path, limit_mib: float, what: str) -> bytes:
    """The bytes of regular file `path`, refused when larger than `limit_mib` MiB (devices such as
    /dev/zero and folders are refused before any read)."""
    limit = int(limit_mib * 2 ** 20)
    try:
        _regular(path, what)
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise UserError(f"{what} '{path}' is {_mib(size)}, over the {limit_mib:g} MiB limit; "
                                "pass --size-limit MIB to lift it if you mean it")
            return f.read(limit)
    except OSError as e:
        raise UserError(f"cannot read {what} '{path}': {e.strerror}") from None


def load_npy(path: str | Path, limit_mib: float) -> np.ndarray:
    """A numeric .npy array with at least one sample, its header checked before anything is allocated:
    no pickled objects, a size within `limit_mib` MiB and within the file."""
    try:
        _regular(path, "input")
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = header(f)
            if dtype.hasobject or dtype.kind not in "biuf":
                raise UserError(f"input '{path}' holds {dtype} values; a numeric array (int8, float32) is expected")
            need = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if need > limit_mib * 2 ** 20:
                raise UserError(f"input '{path}' claims {_mib(need)}, over the {limit_mib:g} MiB limit; "
                                "pass --size-limit MIB to lift it if you mean it")
            if need > os.fstat(f.fileno()).st_size - f.tell():
                raise UserError(f"input '{path}' is truncated: its header claims {need} bytes of data")
            f.seek(0)
            x = np.lib.format.read_array(f, allow_pickle=False)
    except UserError:
        raise
    except OSError as e:
        raise UserError(f"cannot read input '{path}': {e.strerror}") from None
    except ValueError as e:  # not an .npy file, or a malformed header
        raise UserError(f"cannot read input '{path}': {printable(str(e), 200)}") from None
    if x.ndim == 0 or x.shape[0] < 1:
        raise UserError(f"input '{path}' has shape {x.shape}; it needs a batch of at least 1 sample on axis 0")
    return x


def claim_folder(path: str | Path, kind: str, force: bool = False) -> tuple[Path, list[str]]:
    """Make `path` an output folder of `kind` ('deploy', 'data', ...): created here, empty, or marked
    as the kit's `kind` output; otherwise refused unless `force`. Returns the folder and the files the
    kit wrote there last time (empty when it did not), for the caller to replace."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise UserError(f"output folder '{out}' is a file; choose a folder name")
    out.mkdir(parents=True, exist_ok=True)
    marker = _marker(out)
    if marker is not None and marker.get("kind") == kind:
        return out, [f for f in marker.get("files", []) if isinstance(f, str)]
    entries = sorted(p.name for p in out.iterdir())
    if entries and not force:
        raise UserError(f"output folder '{out}' already holds files mcunet-lite did not write there (e.g. "
                        f"'{entries[0]}'); choose a new or empty folder, or pass --force to write into it anyway")
    _write_marker(out, kind, [])
    return out, []


def _marker(out: Path) -> dict | None:
    """The folder's marker, or None when absent or unreadable."""
    try:
        d = json.loads((out / MARKER).read_text())
    except (OSError, ValueError, RecursionError):
        return None
    return d if isinstance(d, dict) else None


def _write_marker(out: Path, kind: str, files: list[str]) -> None:
    (out / MARKER).write_text(json.dumps({"kind": kind, "files": sorted(files)}))


def _inside(out: Path, name: str) -> Path | None:
    """`out / name` when it names a regular file inside `out` (a marker never reaches outside it)."""
    p = out / name
    try:
        inside = p.resolve().is_relative_to(out.resolve()) and not p.is_symlink()
    except OSError:
        return None
    return p if inside and p.is_file() else None


def remove_previous(out: Path, files: list[str]) -> None:
    """Delete the files the kit listed in `out`'s marker (its own earlier output), nothing else."""
    for name in files:
        p = _inside(out, name)
        if p is not None:
            p.unlink()


def record(out: Path, kind: str, before: set[Path]) -> None:
    """List in `out`'s marker every file that is there now but was not in `before`: the kit's output."""
    files = [str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p not in before and p.name != MARKER]
    _write_marker(out, kind, files)


def files_in(out: Path) -> set[Path]:
    """Every file under `out`."""
    return {p for p in out.rglob("*") if p.is_file()}


def refuse_existing(path: str | Path, force: bool) -> None:
    """Refuse to write over an existing file `path` unless `force`: a command's output never replaces
    a user's file (a notebook's result, last week's checkpoint) by surprise."""
    if Path(path).exists() and not force:
        raise UserError(f"'{path}' already exists; choose another output path, or pass --force to replace it")


def output_file(path: str | Path, inputs: list[str | Path], suffixes: tuple[str, ...], force: bool = False) -> Path:
    """Check an output file path: one of `suffixes`, in an existing folder, not a folder itself, not
    one of the command's `inputs`, and not an existing file unless `force`."""
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise UserError(f"output '{out}' must end in {' or '.join(suffixes)}; the file written is the path given")
    if not out.parent.is_dir():
        raise UserError(f"cannot write '{out}': folder '{out.parent}' does not exist")
    if out.is_dir():
        raise UserError(f"cannot write '{out}': it is a folder")
    for p in inputs:
        if out.exists() and Path(p).exists() and os.path.samefile(out, p):
            raise UserError(f"output '{out}' is the input '{p}'; choose another output path")
    refuse_existing(out, force)
    return out


def save_arrays(path: str | Path, arrays: list[np.ndarray], inputs: list[str | Path], force: bool = False) -> Path:
    """Save `arrays` to exactly `path`: .npz (output_0, output_1, ...) for any number, .npy for one."""
    out = output_file(path, inputs, (".npy", ".npz"), force)
    if out.suffix.lower() == ".npy" and len(arrays) != 1:
        raise UserError(f"the model has {len(arrays)} outputs; give --output OUT.npz to save them all")
    try:
        with open(out, "wb") as f:  # a file object: numpy appends no suffix
            if out.suffix.lower() == ".npz":
                np.savez(f, **{f"output_{i}": y for i, y in enumerate(arrays)})
            else:
                np.save(f, arrays[0])
    except OSError as e:
        raise UserError(f"cannot write '{out}': {e.strerror}") from None
    return out
