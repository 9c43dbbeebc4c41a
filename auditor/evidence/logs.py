"""Train-log reader (records.md §3). PLACEHOLDER: to be replaced by the parser work.

Contract: ``read_log(path, root, rel) -> LogFile``. Never raises.
"""
from __future__ import annotations

from pathlib import Path

from auditor.fs import UnreadableFile, read_text
from auditor.model import LogFile, Problem


def read_log(path: Path, root: Path, rel: str) -> LogFile:
    lf = LogFile(path=rel)
    try:
        tf = read_text(path, root)
    except UnreadableFile as exc:
        lf.problems.append(Problem(rel, str(exc)))
        return lf
    lf.sha256 = tf.sha256
    lf.n_lines = tf.text.count("\n") + 1
    return lf
