"""File helpers: atomic writes and JSONL reading that names the file on failure.

Every output of every stage goes through `atomic_path`, so an interrupted job never
leaves a file that a later run could mistake for complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


class DataFileError(ValueError):
    """A data file is missing, empty, truncated or malformed."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; rename it onto `path` only on success.

    Works for files and directories. On error the temporary is removed.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    target = tmp / final.name
    try:
        yield target
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(target, final)
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
