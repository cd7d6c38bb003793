"""Opening input files with one-line errors: the one place where graphdiff turns bytes on disk into text.

Every reader of user or raw files goes through :func:`check_file`, :func:`open_text` or :func:`open_binary`:

- a missing path is a :class:`~graphdiff.errors.MissingFileError`, a directory (or any non-regular file) a
  :class:`~graphdiff.errors.DataError`;
- gzip is recognised by its magic bytes (whatever the suffix) and decompressed on the fly; a truncated or
  corrupt gzip stream is ``FILE: truncated or corrupt gzip (...) after N decompressed lines``;
- an empty file, or one whose first 8 KiB hold a NUL byte (a binary file), is refused before any parsing;
- text is strict UTF-8: a bad byte is ``FILE: line N: not UTF-8 text (byte 0x.. at column C in '...')``.

Errors are found lazily (a truncated gzip is only noticed when reading reaches the cut), so :func:`open_text` and
:func:`open_binary` are context managers that translate the exceptions raised inside their ``with`` block. The
line and column are located by a second, binary pass over the file, on the error path only: reading a valid file
costs what ``open(path, encoding="utf-8")`` costs, plus one 8 KiB look at its start.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, TextIO

from ..errors import DataError, MissingFileError

GZIP_MAGIC = b"\x1f\x8b"
SNIFF_BYTES = 8192
_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _first_line(exc: BaseException, limit: int = 120) -> str:
    """The first line of an exception's message; past ``limit`` characters only its first sentence (library
    messages go on with advice that does not apply here)."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    if len(line) > limit and ". " in line:
        line = line.split(". ", 1)[0]
    return line


def describe(exc: BaseException) -> str:
    """``"Type: first line of the message"``: an exception squeezed onto one line for an error message."""
    return f"{type(exc).__name__}: {_first_line(exc)}"


def check_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` as a :class:`Path` when it names a regular file.

    Raises:
        MissingFileError: nothing at ``path``.
        DataError: a directory or another non-regular file (a FIFO, a device) where ``what`` was expected.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or describe(exc)})") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a directory, expected {what}")
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: not a regular file, expected {what}")
    return path


def is_gzip(path: Path) -> bool:
    """Whether ``path`` starts with the gzip magic bytes."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def _raw(path: Path, gz: bool) -> BinaryIO:
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _sniff(path: Path, what: str, *, text: bool) -> bool:
    """Check the start of ``path`` (decompressed): not empty and, for text, no NUL byte. Returns whether it is
    gzip-compressed."""
    try:
        gz = is_gzip(path)
        with _raw(path, gz) as fh:
            head = fh.read(SNIFF_BYTES)
    except _GZIP_ERRORS as exc:
        raise _gzip_error(path, exc) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or describe(exc)})") from None
    if not head:
        raise DataError(f"{path}: empty file{' (after gzip decompression)' if gz else ''}, expected {what}")
    if text:
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise DataError(f"{path}: UTF-16 text, expected {what} in UTF-8 (save it as UTF-8)")
        nul = head.find(b"\0")
        if nul >= 0:
            raise DataError(f"{path}: binary file (NUL byte at offset {nul}), expected {what}")
    return gz


def _lines_before_damage(path: Path) -> int:
    """Complete lines a damaged gzip stream yields before the failure is detected."""
    n = 0
    try:
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read1(1 << 16):
                n += chunk.count(b"\n")
    except (*_GZIP_ERRORS, OSError):
        pass
    return n


def _gzip_error(path: Path, exc: BaseException) -> DataError:
    return DataError(f"{path}: truncated or corrupt gzip ({_first_line(exc)}) after {_lines_before_damage(path)} "
                     "decompressed lines")


def _decode_error(path: Path, gz: bool) -> DataError | None:
    """The first non-UTF-8 byte of ``path`` as a one-line error naming line, column, byte and context (``None``
    when the whole file decodes: the error came from elsewhere)."""
    try:
        with _raw(path, gz) as fh:
            for k, line in enumerate(fh, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    col = len(line[:exc.start].decode("utf-8")) + 1
                    context = line[max(0, exc.start - 24):exc.start + 24].decode("utf-8", "replace")
                    return DataError(f"{path}: line {k}: not UTF-8 text (byte 0x{line[exc.start]:02x} at column "
                                     f"{col} in {context.rstrip(chr(13) + chr(10))!r})")
    except _GZIP_ERRORS as exc:
        return _gzip_error(path, exc)
    return None


class _GzipGuard:
    """A gzip stream that remembers the error it raised: compiled readers (RDKit's SDF supplier) turn a Python
    exception raised in ``read`` into one of their own, and the remembered error still names the real cause."""

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self.error: BaseException | None = None

    def _guard(self, method, *args):
        try:
            return method(*args)
        except _GZIP_ERRORS as exc:
            self.error = exc
            raise

    def read(self, size: int = -1) -> bytes:
        return self._guard(self._fh.read, size)

    def read1(self, size: int = -1) -> bytes:
        return self._guard(self._fh.read1, size)

    def readline(self, size: int = -1) -> bytes:
        return self._guard(self._fh.readline, size)

    def readinto(self, buffer) -> int:
        return self._guard(self._fh.readinto, buffer)

    @property
    def closed(self) -> bool:  # looked up for every line a TextIOWrapper returns: kept off __getattr__
        return self._fh.closed

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def __getattr__(self, name):
        return getattr(self._fh, name)


@contextmanager
def open_text(path: str | os.PathLike, what: str = "text", *, newline: str | None = "") -> Iterator[TextIO]:
    """Open ``path`` as strict UTF-8 text (gzip-decompressed when it is gzip; a leading byte-order mark, as Excel
    writes, is dropped) for reading inside a ``with`` block.

    Args:
        path: the file.
        what: what the file should hold, for messages (``"SMILES text"``, ``"JSON lines"``).
        newline: as for :func:`open` (default ``""``: line endings are kept, as the csv module wants).

    Raises:
        MissingFileError / DataError: see the module docstring; raised on entry or from inside the block.
    """
    path = check_file(path, what)
    gz = _sniff(path, what, text=True)
    try:
        raw = _raw(path, gz)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or describe(exc)})") from None
    guard = _GzipGuard(raw) if gz else None
    fh = io.TextIOWrapper(guard or raw, encoding="utf-8-sig", errors="strict", newline=newline)  # BOM dropped
    try:
        with fh:
            yield fh
    except UnicodeDecodeError:
        err = _decode_error(path, gz)
        if err is None:
            raise
        raise err from None
    except Exception:
        if guard is not None and guard.error is not None:
            raise _gzip_error(path, guard.error) from None
        raise


@contextmanager
def open_binary(path: str | os.PathLike, what: str = "file", *, binary_ok: bool = True) -> Iterator[BinaryIO]:
    """Open ``path`` for reading bytes (gzip-decompressed when it is gzip) inside a ``with`` block; refuses an
    empty file and, with ``binary_ok=False`` (text formats read as bytes, such as SDF), one holding NUL bytes.

    A damaged gzip stream is reported as such even when the code reading it (a compiled library) raised an
    exception of another type, or swallowed the error and stopped early."""
    path = check_file(path, what)
    gz = _sniff(path, what, text=not binary_ok)
    try:
        fh = _raw(path, gz)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or describe(exc)})") from None
    guard = _GzipGuard(fh) if gz else None
    try:
        with fh:
            yield guard if gz else fh
    except Exception:
        if guard is not None and guard.error is not None:
            raise _gzip_error(path, guard.error) from None
        raise
    if guard is not None and guard.error is not None:
        raise _gzip_error(path, guard.error)


def read_text(path: str | os.PathLike, what: str = "text") -> str:
    """The whole of ``path`` as text, through :func:`open_text` (universal newlines)."""
    with open_text(path, what, newline=None) as fh:
        return fh.read()


def read_bytes(path: str | os.PathLike, what: str = "file") -> bytes:
    """The whole of ``path`` as bytes, through :func:`open_binary` (so never empty, never a directory)."""
    with open_binary(path, what) as fh:
        return fh.read()
