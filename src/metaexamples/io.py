"""File helpers: atomic writes and JSONL reading that names the file on failure.

Every output of every stage goes through `atomic_path`, so an interrupted job never
leaves a file that a later run could mistake for complete, and a failed write (a full
disk, a read-only directory) is a `FileWriteError` that names the output and what was
being done: ``writing results/g1/.../samples.jsonl: No space left on device``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


class DataFileError(ValueError):
    """A data file is missing, empty, truncated or malformed."""


class FileWriteError(OSError):
    """An operating-system error while writing a named output.

    ``str()`` is ``"<operation> <path>: <reason>"``; `errno` and `filename` are those of
    the cause, so callers can still test ``err.errno == errno.ENOSPC``.
    """

    def __init__(
        self, operation: str, path: str | os.PathLike[str], err_no: int | None, reason: str
    ) -> None:
        super().__init__(err_no, reason, str(path))
        self.operation = operation

    def __str__(self) -> str:
        return f"{self.operation} {self.filename}: {self.strerror}"


# A Rust std::io::Error as safetensors (and tokenizers) render it: "... Os { code: 28, ..."
_RUST_IO_ERROR = re.compile(r"Os \{ code: (\d+)")


def as_write_error(
    err: BaseException, path: str | os.PathLike[str], operation: str = "writing"
) -> FileWriteError | None:
    """`err` as a FileWriteError naming `path`, if it is an operating-system error.

    Handles OSError and the I/O errors of Rust-backed writers (safetensors' "Error while
    serializing: IoError(Os { code: 28, ... })", which names no file). None otherwise.
    """
    if isinstance(err, FileWriteError):
        return err
    if isinstance(err, OSError):
        reason = err.strerror or str(err)
        return FileWriteError(operation, path, err.errno, reason)
    found = _RUST_IO_ERROR.search(str(err))
    if found:
        code = int(found.group(1))
        return FileWriteError(operation, path, code, os.strerror(code))
    if disk_is_full(path):
        # writers that lose the errno: torch.save's zip writer says only "[enforce fail at
        # inline_container.cc] unexpected pos N vs M" when the disk fills under it
        return FileWriteError(
            operation,
            path,
            errno.ENOSPC,
            f"{os.strerror(errno.ENOSPC)} ({type(err).__name__}: {err})",
        )
    return None


# Left free when a write fails for want of space: less than one write buffer.
FULL_DISK_BYTES = 1 << 20


def disk_is_full(path: str | os.PathLike[str]) -> bool:
    """True when the filesystem holding `path` (or its nearest existing parent) has less
    than FULL_DISK_BYTES available."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        st = os.statvfs(p)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < FULL_DISK_BYTES


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only on success.

    Works for files and directories. On error the temporary is removed; an operating-system
    error (ENOSPC, EACCES, ...) becomes a `FileWriteError` naming `path`.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    except OSError as err:
        raise FileWriteError("writing", final, err.errno, err.strerror or str(err)) from err
    target = tmp / final.name
    try:
        yield target
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(target, final)
    except Exception as err:
        named = getattr(err, "filename", None)
        if named is not None and not str(named).startswith(str(tmp)):
            raise  # about another file (an input read inside the block): its own message
        wrapped = as_write_error(err, final)
        if wrapped is None or wrapped is err:
            raise
        raise wrapped from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def dumps_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no NaN, stable float formatting."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, allow_nan=False, indent=2) + "\n"


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(dumps_json(obj), encoding="utf-8")


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> int:
    """Write one JSON object per line (keys in the order given); return the row count."""
    n = 0
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
            n += 1
    return n


def read_json(path: str | os.PathLike[str]) -> Any:
    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"{p}: file not found")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFileError(f"{p}: not valid JSON (truncated or corrupt?): {err}") from err


def read_jsonl(
    path: str | os.PathLike[str], required: Iterable[str] = (), allow_empty: bool = False
) -> list[dict[str, Any]]:
    """Read a JSONL file, checking that each row has the `required` keys.

    Raises DataFileError naming the file and line for a missing file, an empty file
    (unless `allow_empty`), a line that is not a JSON object, or a missing key.
    """
    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"{p}: file not found")
    required = tuple(required)
    rows: list[dict[str, Any]] = []
    with p.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFileError(
                    f"{p}:{lineno}: not valid JSON (truncated or corrupt?): {err}"
                ) from err
            if not isinstance(row, dict):
                raise DataFileError(f"{p}:{lineno}: expected a JSON object per line")
            missing = [k for k in required if k not in row]
            if missing:
                raise DataFileError(f"{p}:{lineno}: missing key(s) {missing}")
            rows.append(row)
    if not rows and not allow_empty:
        raise DataFileError(f"{p}: file is empty")
    return rows


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def stable_hash(text: str) -> int:
    """A 64-bit hash of `text` that is the same on every machine and Python run."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")
