"""Read-only, capped access to the files of an audited tree.

Everything the audit reads goes through here, so the hostile-folder rules live in one place:
no symlink that leaves the audited tree is followed, no file over the cap is read whole, and
text is decoded whatever its encoding (BOM, UTF-16 from PowerShell, CRLF, invalid UTF-8).
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 50 * 1024 * 1024  # files over this are skipped with a finding
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024  # cap for decoding code wrappers and artifacts


class UnreadableFile(Exception):
    """Raised with a one-line reason; callers turn it into a Problem."""


@dataclass
class TextFile:
    text: str  # decoded, "\r\n" and lone "\r" normalised to "\n"
    raw_size: int
    encoding: str
    sha256: str  # of the raw bytes
    repairs: list[str]


# Record folders read straight from git objects (auditor.gitsource) sit under a path that does not
# exist on disk; their source answers size and content for it, so they pass the same caps as files.
_MOUNTS: dict[str, object] = {}


def mount(root: Path, source) -> None:
    """Serve reads under ``root`` from ``source`` (``check(rel, max_bytes) -> size``, ``read(rel, max_bytes)``)."""
    _MOUNTS[str(root)] = source


def mounted(path: Path):
    """(source, relative posix path) when ``path`` lies under a mounted root, else None."""
    if not _MOUNTS:
        return None
    p = Path(path)
    for i, top in enumerate((p, *p.parents)):
        src = _MOUNTS.get(str(top))
        if src is not None:
            return src, "/".join(p.parts[len(p.parts) - i:]) if i else ""
    return None


def is_inside(path: Path, root: Path) -> bool:
    """True when ``path`` resolves (through any symlinks) to somewhere under ``root``."""
    if _MOUNTS and mounted(path) is not None:  # git trees hold no followable symlink: lexical
        top = str(root).rstrip("/")
        return str(path) == top or str(path).startswith(top + "/")
    try:
        real = Path(os.path.realpath(path))
        top = Path(os.path.realpath(root))
        return real == top or top in real.parents
    except (OSError, RuntimeError, ValueError):
        return False


def check_readable(path: Path, root: Path, max_bytes: int = MAX_FILE_BYTES) -> int:
    """Return the file's size, or raise UnreadableFile saying why it is not read."""
    if _MOUNTS and (m := mounted(path)) is not None:
        return m[0].check(m[1], max_bytes)
    # Checked for every path, not only for symlinks: a symlinked parent folder leaves the tree too.
    if not is_inside(path, root):
        if os.path.islink(path):
            raise UnreadableFile("symlink pointing outside the audited folder; not followed")
        raise UnreadableFile("outside the audited folder (reached through a symlinked folder); not followed")
    try:
        st = path.stat()
    except (OSError, ValueError) as exc:
        raise UnreadableFile(f"cannot stat ({getattr(exc, 'strerror', None) or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableFile("not a regular file")
    if st.st_size > max_bytes:
        raise UnreadableFile(f"{st.st_size:,} bytes, over the {max_bytes:,}-byte cap; skipped")
    return st.st_size


# O_NONBLOCK: a FIFO swapped in after the check must not block the audit; O_NOFOLLOW on the
# resolved path: a symlink swapped in after the check is refused, not followed.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def read_bytes(path: Path, root: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    if _MOUNTS and (m := mounted(path)) is not None:
        if not is_inside(path, root):
            raise UnreadableFile("outside the audited folder; not read")
        return m[0].read(m[1], max_bytes)
    check_readable(path, root, max_bytes)
    try:
        fd = os.open(os.path.realpath(path), _OPEN_FLAGS)
    except (OSError, ValueError) as exc:
        raise UnreadableFile(f"cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFile("not a regular file")
        if st.st_size > max_bytes:
            raise UnreadableFile(f"{st.st_size:,} bytes, over the {max_bytes:,}-byte cap; skipped")
        chunks: list[bytes] = []
        got = 0
        while got <= max_bytes:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    except OSError as exc:
        raise UnreadableFile(f"cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if got > max_bytes:
        raise UnreadableFile(f"grew past the {max_bytes:,}-byte cap while reading; skipped")
    return b"".join(chunks)


def decode_text(data: bytes) -> tuple[str, str, list[str]]:
    """Decode bytes of unknown encoding: returns (text, encoding, repairs)."""
    repairs: list[str] = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
        repairs.append("stripped a UTF-8 byte-order mark")
        enc = "utf-8-sig"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_utf16(data):
        enc = "utf-16"
        try:
            text = data.decode("utf-16")
            repairs.append("decoded as UTF-16")
            return _normalise_newlines(text, repairs), enc, repairs
        except UnicodeDecodeError:
            enc = "utf-8"
    else:
        enc = "utf-8"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        repairs.append("invalid UTF-8 replaced")
        enc = "utf-8 (lossy)"
    if "\x00" in text:
        text = text.replace("\x00", "")
        repairs.append("removed NUL bytes")
    return _normalise_newlines(text, repairs), enc, repairs


def _looks_utf16(data: bytes) -> bool:
    sample = data[:4000]
    if len(sample) < 4:
        return False
    zeros_odd = sample[1::2].count(0)
    return zeros_odd > 0.4 * (len(sample) // 2)


def _normalise_newlines(text: str, repairs: list[str]) -> str:
    if "\r" in text:
        if "\r\n" in text:
            repairs.append("CRLF line endings")
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            # bare CR: progress bars redrawing one line; keep the last state of each line
            text = "\n".join(seg.split("\r")[-1] if "\r" in seg else seg for seg in text.split("\n"))
    return text


def read_text(path: Path, root: Path, max_bytes: int = MAX_FILE_BYTES) -> TextFile:
    data = read_bytes(path, root, max_bytes)
    key = (str(path), len(data), hashlib.sha256(data).hexdigest())
    hit = _recent.get(key)
    if hit is not None:  # the log parser and the log-evidence analysis read the same files
        return hit
    if _is_binary(data):
        raise UnreadableFile("binary content, not text")
    text, enc, repairs = decode_text(data)
    tf = TextFile(text, len(data), enc, key[2], repairs)
    if len(data) <= _RECENT_MAX_BYTES:
        _recent[key] = tf
        while len(_recent) > _RECENT_ENTRIES:
            _recent.pop(next(iter(_recent)))
    return tf


# A few recently decoded files, keyed by their bytes' hash (so an edited file is never served stale).
_RECENT_ENTRIES = 32
_RECENT_MAX_BYTES = 4 * 1024 * 1024
_recent: dict[tuple[str, int, str], TextFile] = {}


def _is_binary(data: bytes) -> bool:
    sample = data[:8192]
    if not sample:
        return False
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")) or _looks_utf16(sample):
        return False
    if b"\x00" in sample:
        return True
    # count control bytes in C rather than a Python loop (this runs on every file an audit reads)
    ctrl = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return ctrl > 0.1 * len(sample)


_CONTROL_BYTES = bytes(b for b in range(32) if b < 9 or 13 < b)


def safe_walk(root: Path, max_depth: int = 12):
    """Yield (dirpath, dirnames, filenames) under root without following symlinked dirs."""
    root_depth = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=lambda e: None):
        d = Path(dirpath)
        if len(d.parts) - root_depth >= max_depth:
            dirnames[:] = []
        dirnames[:] = sorted(n for n in dirnames if not n.startswith(".git"))
        yield d, dirnames, sorted(filenames)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()
