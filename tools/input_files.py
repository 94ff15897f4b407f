"""Reading the files a person gives Chainproof (inputs files, proposals, tree heads, dossier and
market files, 10-K documents): a size limit checked before anything is read, and errors that name
the file.

* **Size**: a file larger than ``input_file_max_mb`` (setting, default :data:`DEFAULT_MAX_MB`
  MiB; ``CHAINPROOF_INPUT_FILE_MAX_MB``) is refused with :class:`~chainproof.errors.InputFileError`
  naming the file, its size and the limit, instead of being read for minutes. The entry points
  (the CLI's settings, :class:`chainproof.app.Chainproof`) call :func:`configure` with the setting.
  A compressed (``.gz``) file is limited by its size on disk.
* **Text**: a file that is not valid text in its encoding is refused naming the file and the
  first bad byte's offset (instead of Python's bare "'utf-8' codec can't decode byte 0xff").
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from chainproof.errors import InputFileError

DEFAULT_MAX_MB = 32.0
"""Default largest input file, MiB: about three times the largest 10-K with inline XBRL of the
S&P 500 companies in the public data set (`shared/data`), and far above any dossier CSV."""

_limit_mb = DEFAULT_MAX_MB


def configure(max_mb: float) -> None:
    """Set the largest input file (MiB) for this process (the ``input_file_max_mb`` setting)."""
    global _limit_mb
    _limit_mb = float(max_mb)


def max_bytes() -> int:
    """The largest input file in bytes (see :func:`configure`)."""
    return int(_limit_mb * 2**20)


def _label(path: Path, what: str) -> str:
    return f"{what} {path}" if what else str(path)


def check_size(path: str | Path, what: str = "") -> Path:
    """``path`` when it is within the size limit. Raises :class:`InputFileError` naming ``what``
    (e.g. ``--inputs-file``) and the file when it is larger, or cannot be read."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputFileError(f"{_label(path, what)}: cannot read it ({exc.strerror or exc})") from None
    if size > max_bytes():
        raise InputFileError(f"{_label(path, what)}: {size / 2**20:,.1f} MiB, more than the {_limit_mb:g} MiB "
                             f"limit for input files (setting input_file_max_mb, CHAINPROOF_INPUT_FILE_MAX_MB)")
    return path


def read_bytes(path: str | Path, what: str = "") -> bytes:
    """The bytes of ``path`` (size-checked; :class:`InputFileError` naming the file)."""
    path = check_size(path, what)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputFileError(f"{_label(path, what)}: cannot read it ({exc.strerror or exc})") from None


def decode(data: bytes, path: str | Path, what: str = "", encoding: str = "utf-8") -> str:
    """``data`` (read from ``path``) as text; :class:`InputFileError` naming the file and the
    offset of the first byte that is not ``encoding``."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{_label(Path(path), what)}: not valid {exc.encoding.upper()} text (byte "
                             f"0x{data[exc.start]:02x} at offset {exc.start:,}); save it as UTF-8") from None


def read_text(path: str | Path, what: str = "", encoding: str = "utf-8") -> str:
    """The text of ``path``: size-checked, decoded (``utf-8-sig`` drops a byte-order mark), errors
    naming the file."""
    return decode(read_bytes(path, what), path, what, encoding)


def open_text(path: str | Path, what: str = "", encoding: str = "utf-8") -> io.StringIO:
    """A text stream over ``path`` (``.gz`` decompressed), read and decoded at once, size-checked
    on disk, errors naming the file."""
    path = Path(path)
    data = read_bytes(path, what)
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputFileError(f"{_label(path, what)}: not a readable gzip file ({exc})") from None
    return io.StringIO(decode(data, path, what, encoding), newline="")


__all__ = ["DEFAULT_MAX_MB", "check_size", "configure", "decode", "max_bytes", "open_text", "read_bytes", "read_text"]
