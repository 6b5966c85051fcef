"""Where a number came from: git commit, device, file hashes, UTC time, atomic writes.

Lives in `evaluation` (the package every other one may import) so that checkpoints and
result records share one implementation.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
import platform
import subprocess
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def git_commit(repo: Path = REPO_ROOT) -> str:
    """Commit hash of the checkout, with a ``+dirty`` suffix for uncommitted changes;
    ``"unknown"`` outside a git checkout."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                             text=True, check=True, timeout=10).stdout.strip()
        # results/ is written by the harnesses themselves: it does not make the code dirty
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)results"],
                               cwd=repo, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def device_description(device: str | None = None) -> str:
    """Human-readable description of the compute device a number was measured on."""
    try:
        import torch
    except ImportError:  # evaluation must not require torch
        torch = None
    if torch is not None and (device or "").startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        return f"cuda:{torch.cuda.get_device_name(index)}"
    threads = torch.get_num_threads() if torch is not None else os.cpu_count()
    return f"cpu:{platform.processor() or platform.machine()} ({threads} threads)"


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike):
    """Binary file handle whose content replaces ``path`` only when the block exits
    without error: temp file in the same folder, fsync, rename. Readers see the old
    file or the new one, never a partial one; an interrupted write leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_writer(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
