"""What the logs say about the run that produced them: the final metric line, the hyperparameter
dump and stage markers. Prefers the log parser's fields (``RunLog.final``, ``RunLog.hyperparameters``,
``RunLog.markers``) and falls back to scanning the decoded text the reader kept (``LogFile.text``);
nothing here opens a file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from auditor.evidence.logs import MARKERS as _TABLE

# stage markers the eval-integrity rules care about (the kinds of the one marker table that have a
# ``confirm`` pattern): kind -> pattern
MARKERS: dict[str, re.Pattern] = {k: m.confirm for k, m in _TABLE.items() if m.confirm is not None}

# a marker's pattern only runs on lines holding one of its hints (logs can be megabytes)
_MARKER_HINTS = {k: m.hints for k, m in _TABLE.items() if m.confirm is not None}
_KV_HEAD_LINES = 400
# logs often embed the source: a line of code that prints a marker is not the marker
_CODE_LINE = re.compile(r"""(\b(print|log\w*|info|write)\s*\(|\bf["']|\bdef\s|\breturn\b|^\s*(if|elif|for|while|with)\b.*:\s*$|^\s*#)""")
_SOURCE_LINE = re.compile(r"^\s*[\w.]+(\s*:\s*[\w\[\], .|]+)?\s+=\s+|\bos\.environ|\bgetenv\(|^\s*(def|class|import|from|return|if|elif|else|for|while|with|try|except)\b")
_KV = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z0-9_]{1,60})\s*[:=]\s*([^\s,;]+)")


@dataclass
class LogLine:
    file: str
    line: int
    text: str


@dataclass
class LogFacts:
    files: list[str] = field(default_factory=list)
    texts: list[tuple[str, str]] = field(default_factory=list)  # (file, text) as read
    markers: dict[str, list[LogLine]] = field(default_factory=dict)
    finals: list[LogLine] = field(default_factory=list)  # the last val_bpb line of each log
    kv: dict[str, str] = field(default_factory=dict)  # key=value / key: value pairs of the dumps

    @property
    def lines(self) -> bool:
        """Truthy when any log text was read (kept for callers that test ``if logs.lines``)."""
        return any(t for _, t in self.texts)

    def has(self, kind: str) -> bool:
        return bool(self.markers.get(kind))

    def search(self, needle: str, limit: int = 3) -> list[LogLine]:
        out = []
        for name, text in self.texts:
            at = _LineAt(name, text)
            pos = text.find(needle)
            while pos >= 0 and len(out) < limit:
                ll = at(pos)
                if not _CODE_LINE.search(ll.text):  # the embedded source printing it is not the print
                    out.append(ll)
                pos = text.find(needle, pos + 1)
            if len(out) >= limit:
                break
        return out


def _line_at(name: str, text: str, pos: int) -> LogLine:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    end = len(text) if end < 0 else end
    return LogLine(name, text.count("\n", 0, pos) + 1, text[start:end].rstrip())


class _LineAt:
    """``_line_at`` for positions that mostly ascend: newlines are counted from the previous position,
    not from the top of a log that can be megabytes."""

    def __init__(self, name: str, text: str):
        self.name, self.text = name, text
        self.pos = self.newlines = 0

    def __call__(self, pos: int) -> LogLine:
        text = self.text
        if pos >= self.pos:
            self.newlines += text.count("\n", self.pos, pos)
        else:
            self.newlines = text.count("\n", 0, pos)
        self.pos = pos
        start = text.rfind("\n", 0, pos) + 1
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        return LogLine(self.name, self.newlines + 1, text[start:end].rstrip())


MAX_MARKERS_PER_KIND = 20


def read_log_facts(evidence) -> LogFacts:
    lf_out = LogFacts()
    for lf in evidence.logs:
        lf_out.files.append(lf.path)
        parsed_final = None
        for run in getattr(lf, "runs", []) or []:
            if run.final is not None:
                parsed_final = LogLine(lf.path, run.final.line, run.final.text)
            for k, v in (run.hyperparameters or {}).items():
                lf_out.kv.setdefault(str(k), str(v))
            for kind, items in (run.markers or {}).items():
                if kind not in MARKERS:
                    continue
                for item in items:
                    try:
                        ln, mtext = item
                    except (TypeError, ValueError):
                        continue
                    if MARKERS[kind].search(str(mtext)) and not _CODE_LINE.search(str(mtext)):
                        lf_out.markers.setdefault(kind, []).append(LogLine(lf.path, ln, str(mtext)))
        text = lf.text
        if text is None:  # unreadable: the reader reported it
            continue
        lf_out.texts.append((lf.path, text))
        low = text.lower()
        for kind, pat in MARKERS.items():
            found = lf_out.markers.setdefault(kind, [])
            starts: set[int] = set()
            for hint in _MARKER_HINTS.get(kind, ()):
                pos = low.find(hint)
                while pos >= 0 and len(starts) < 10 * MAX_MARKERS_PER_KIND:
                    starts.add(text.rfind("\n", 0, pos) + 1)
                    pos = low.find(hint, pos + 1)
            at = _LineAt(lf.path, text)
            for st in sorted(starts):
                if len(found) >= MAX_MARKERS_PER_KIND:
                    break
                ll = at(st)
                if pat.search(ll.text) and not _CODE_LINE.search(ll.text) and \
                        not any(x.line == ll.line and x.file == ll.file for x in found):
                    found.append(ll)
        head = text[: _nth_newline(text, _KV_HEAD_LINES)]
        for line in head.split("\n"):
            # the source a log embeds (``X = int(os.environ.get(...))``) is never the run's configuration
            if len(line) < 400 and ("=" in line or ":" in line) and not _SOURCE_LINE.search(line):
                for k, v in _KV.findall(line):
                    lf_out.kv.setdefault(k, v)
        final = parsed_final
        if final is None:
            for m in _FINAL_LINE.finditer(text):
                final = m
            final = _line_at(lf.path, text, final.start()) if final is not None else None
        if final:
            lf_out.finals.append(final)
    lf_out.markers = {k: v for k, v in lf_out.markers.items() if v}
    return lf_out


_FINAL_LINE = re.compile(r"^.*val_bpb[:=]\s*[0-9.]+.*$", re.M)
def _nth_newline(text: str, n: int) -> int:
    pos = -1
    for _ in range(n):
        pos = text.find("\n", pos + 1)
        if pos < 0:
            return len(text)
    return pos


_ENV_ASSIGN = re.compile(r"(?<![\w-])([A-Z][A-Z0-9_]{1,60})=(\"[^\"]*\"|'[^']*'|[^\s\\`]+)")


def readme_env(readme: str | None) -> dict[str, str]:
    """Env assignments in the README's run commands: ``NGRAM_EVAL=1 torchrun ...`` / ``export X=1``."""
    out: dict[str, str] = {}
    if not readme:
        return out
    for line in readme.split("\n"):
        s = line.strip().lstrip("$ ").strip()
        if not s or len(s) > 2000:
            continue
        if ("torchrun" in s or "python" in s or s.startswith("export ") or s.endswith("\\") or
                re.match(r"^[A-Z][A-Z0-9_]+=\S+(\s+\\)?$", s) or re.match(r"^([A-Z][A-Z0-9_]+=\S+\s+)+", s)):
            for k, v in _ENV_ASSIGN.findall(s):
                out.setdefault(k, v.strip("\"'"))
    return out
