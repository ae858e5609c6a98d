"""A recording file read as numbered text lines, streamed: never held whole.

`TextFile.open` checks that the file can be read, is not empty and is text
(not binary), and picks its encoding (UTF-8, with or without a BOM; UTF-16 with its BOM; else
Latin-1) in one pass over the bytes; `lines()` then reads it again line by
line, numbered from 1, split as `str.splitlines` splits. Problems raise
`RecordingError` naming the file and what to do.
"""
from __future__ import annotations

import codecs
import stat
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator


CHUNK = 1 << 20
SNIFF_BYTES = 8192
WHITESPACE = b" \t\n\r\x0b\x0c"


class RecordingError(ValueError):
    """Input that cannot be read as a recording; the message says why and what to do."""


@dataclass(frozen=True)
class TextFile:
    path: Path
    encoding: str
    cut: bool = False       # UTF-16 ending in half a character (cut off while written): its last line left out

    @classmethod
    def open(cls, path: Path) -> "TextFile":
        return cls(path, *_encoding(path))

    def lines(self, after: int = 0) -> Iterator[tuple[int, str]]:
        """(line number, text) of every line past line `after`, without line ends."""
        numbered = enumerate(self._texts(), 1)
        return islice(numbered, after, None) if after else numbered

    def head(self) -> list[str]:
        """head_lines() of this file."""
        return head_lines(s for _, s in self.lines())

    def _texts(self) -> Iterator[str]:
        try:
            # (a cut UTF-16 file decoded whole but for its last half character)
            with self.path.open(encoding=self.encoding, newline=None,
                                errors="ignore" if self.cut else "strict") as f:
                held = None         # a cut file's last line is what it cut: left out
                for raw in f:
                    # universal newlines split at \n, \r\n and \r; splitlines
                    # also at \v, \f, \x1c-\x1e, \x85, \u2028 and \u2029
                    for line in raw.splitlines():
                        if held is not None:
                            yield held
                        held = line
                if held is not None and not self.cut:
                    yield held
        except (OSError, UnicodeDecodeError) as exc:
            raise RecordingError(f"{self.path}: cannot read it to the end ({exc}); "
                                 f"was it changed while being read?") from None


def is_data(line: str) -> bool:
    """Neither blank nor a '#' comment."""
    t = line.strip()
    return bool(t) and not t.startswith("#")


def head_lines(lines: Iterable[str]) -> list[str]:
    """The lines up to and including the first data line (all of them when
    there is none): where a recording's headers live."""
    out = []
    for s in lines:
        out.append(s)
        if is_data(s):
            break
    return out


def _encoding(path: Path) -> tuple[str, bool]:
    """('utf-8-sig' when the whole file is UTF-8, 'utf-16' with its BOM, else
    'latin-1'; whether a UTF-16 file ends in half a character); checks on the way."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8 = True
    text_seen = False
    head = b""
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError
        if not stat.S_ISREG(mode):
            raise RecordingError(f"{path}: not a regular file (a device or a pipe); save the "
                                 f"recording to a file and give that")
        with path.open("rb") as f:
            if f.read(2) in (b"\xff\xfe", b"\xfe\xff"):
                return _utf16(path, f)      # a spreadsheet's "Unicode text"
            f.seek(0)
            while chunk := f.read(CHUNK):
                if not head:
                    head = chunk[:SNIFF_BYTES]
                text_seen = text_seen or bool(chunk.strip(WHITESPACE))
                if utf8:
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError:
                        utf8 = False
            if utf8:
                try:
                    decoder.decode(b"", final=True)
                except UnicodeDecodeError:
                    utf8 = False
    except RecordingError:
        raise
    except IsADirectoryError:
        raise RecordingError(f"{path}: is a directory; give a recording file") from None
    except FileNotFoundError:
        raise RecordingError(f"{path}: no such file") from None
    except OSError as exc:
        raise RecordingError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:             # a NUL in the name
        raise RecordingError(f"{path!r}: cannot read ({exc}); check the file name") from None
    if not text_seen:
        raise RecordingError(f"{path}: the file is empty; record a session first")
    _not_binary(path, head)
    return ("utf-8-sig" if utf8 else "latin-1"), False


def _utf16(path: Path, f: BinaryIO) -> tuple[str, bool]:
    # the BOM read: the rest must decode, and hold text
    decoder = codecs.getincrementaldecoder("utf-16")()     # the BOM says which byte order
    f.seek(0)
    text_seen = False
    cut = False
    try:
        while chunk := f.read(CHUNK):
            text_seen = text_seen or bool(decoder.decode(chunk).strip())
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            cut = True          # all of it decoded but its last byte or half pair
    except UnicodeDecodeError:
        raise RecordingError(f"{path}: starts as UTF-16 text but does not decode as it; save it again "
                             f"as CSV in UTF-8") from None
    if not text_seen:
        raise RecordingError(f"{path}: the file is empty; record a session first")
    return "utf-16", cut


def _not_binary(path: Path, head: bytes) -> None:
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 13, 12))
    if b"\0" in head or controls > len(head) // 20:
        raise RecordingError(
            f"{path}: binary data, not a text recording; export it as CSV (a time_s column "
            f"and one column per channel)")
