"""`pgolf audit` on a real pseudo-terminal of 80 and of 132 columns: no line wider than the
terminal, no rule id cut short, every folder name whole (wrapped inside its column), a track
column, and the closing line with the elapsed time. Over the bundled examples always; over the
challenge's merged records when PGOLF_HEAD points at an extracted ``records/`` tree."""
from __future__ import annotations

import os
import pty
import re
import select
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.cells import cell_len

import rules

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "records"
HEAD = os.environ.get("PGOLF_HEAD", "")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
CLOSING = re.compile(r"^(\d+) folders in \d+\.\d s: \d+ fail, \d+ needs? review, \d+ pass$")
RULE_IDS = set(rules.load_all())


def _transcript(args: list[str], cols: int, cwd: Path) -> tuple[int, str]:
    """stdout on a pty of ``cols`` columns (the report sizes itself from it); stderr to a pipe."""
    import fcntl
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen([sys.executable, "-P", "-m", "auditor", *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=subprocess.PIPE, env=env)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.5)
        if master in r:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: the other end closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif proc.poll() is not None:
            break
    os.close(master)
    err = proc.stderr.read().decode("utf-8", "replace")
    code = proc.wait()
    assert "Traceback" not in err, err
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r\n", "\n")
    return code, text


def _folder_names(tree: Path) -> set[str]:
    return {p.name for p in tree.glob("*/*") if p.is_dir()}


def _summary_rows(lines: list[str]) -> tuple[list[str], list[list[str]]]:
    """The summary table's header and its rows (a row with its wrapped continuation lines)."""
    start = lines.index("Summary (worst first)")
    header = lines[start + 1]
    rows: list[list[str]] = []
    for line in lines[start + 3:]:
        if CLOSING.match(line) or not line.strip():
            break
        if re.match(r"^ (FAIL|REVIEW|PASS) ", line):
            rows.append([line])
        elif rows:
            rows[-1].append(line)
    return header, rows


def _check(text: str, cols: int, names: set[str]) -> None:
    lines = [line.rstrip() for line in text.split("\n")]  # a terminal's lines are padded to its width
    wide = [line for line in lines if cell_len(line) > cols]
    assert not wide, f"{len(wide)} lines wider than {cols}: {wide[:3]}"
    for line in lines:  # a rule id is never cut short, in findings or in the table
        for m in re.finditer(r"\b[A-Z][A-Z0-9]+(?:-[A-Z0-9]+)+-?…?", line):
            tok = m.group(0)
            assert tok in RULE_IDS or not any(r.startswith(tok.rstrip("…")) and r != tok for r in RULE_IDS), (tok, line)
    closing = [line for line in lines if CLOSING.match(line)]
    assert len(closing) == 1 and int(CLOSING.match(closing[0]).group(1)) == len(names), closing
    header, rows = _summary_rows(lines)
    assert header.split()[:3] == ["verdict", "track", "folder"] and header.split()[-2:] == ["top", "finding"]
    assert len(rows) == len(names)
    start = header.index("folder")
    # the folder column runs from its header to the next header (the first after the gap)
    nxt = re.search(r"\S", header[start + len("folder"):])
    end = start + len("folder") + nxt.start() if nxt else None
    seen = set()
    for row in rows:
        name = "".join(part[start:end].strip() if end else part[start:].strip() for part in row)
        # a name with spaces wraps at a space; the column keeps its pieces on separate lines
        seen.add(name)
        first = row[0]
        assert first.split()[1] in ("10min", "non-record"), first  # the track column
        top = first.rstrip().rsplit(" ", 1)[-1]
        if re.fullmatch(r"[A-Z][A-Z0-9-]*…?", top):  # the top finding column holds a whole rule id
            assert top in RULE_IDS, first
    squeezed = {n.replace(" ", "") for n in names}
    assert {s.replace(" ", "") for s in seen} == squeezed


@pytest.mark.parametrize("cols", [80, 132])
def test_examples_transcript(tmp_path, cols):
    code, text = _transcript(["audit", str(EXAMPLES), "--jobs", "2"], cols, tmp_path)
    assert code == 1  # several examples fail on purpose
    _check(text, cols, _folder_names(EXAMPLES))


@pytest.mark.slow
@pytest.mark.skipif(not (HEAD and (Path(HEAD) / "track_10min_16mb").is_dir()),
                    reason="set PGOLF_HEAD to the challenge's extracted records/ tree (main's merged records)")
@pytest.mark.parametrize("cols", [80, 132])
def test_merged_records_transcript(tmp_path, cols):
    tree = Path(HEAD)
    code, text = _transcript(["audit", str(tree), "--jobs", "2", "--fail-on", "never"], cols, tmp_path)
    assert code == 0
    names = _folder_names(tree)
    assert len(names) >= 50
    _check(text, cols, names)
