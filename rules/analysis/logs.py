"""What the logs say about the run that produced them: the final metric line, the hyperparameter
dump and stage markers. Prefers the log parser's fields (``RunLog.final``, ``RunLog.hyperparameters``,
``RunLog.markers``) and falls back to scanning the raw lines (read through ``auditor.fs``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from auditor.fs import UnreadableFile, read_text

# stage markers the eval-integrity rules care about: kind -> pattern
MARKERS: dict[str, re.Pattern] = {
    "ngram_pass2": re.compile(r"ngram_pass2|pass\s*2\b.*rescor|rescor(?:e|ing)\b.*(?:chunk|cache|pass)|two[_-]?pass.*(?:done|bpb)", re.I),
    "ppm_mix": re.compile(r"\[ppm_mix\]|\bppm[_-]?(?:mix|d)\b.*(?:bpb|loss|byte)", re.I),
    "ngram_prefill_train": re.compile(r"prefill\w*.*train|train\w*.*prefill|prefill.*fineweb_train|pre-?fill(?:ed|ing)? .*from .*(?:train|shard)", re.I),
    "ngram_eval": re.compile(r"ngram|n-gram", re.I),
    "ttt": re.compile(r"\bttt\b|test[-_ ]time", re.I),
    "slot": re.compile(r"\bslot\b", re.I),
}

_FINAL = re.compile(r"val_bpb[:=]\s*([0-9.]+)")
_KV = re.compile(r"(?<![\w.])([A-Za-z_][A-Za-z0-9_]{1,60})\s*[:=]\s*([^\s,;]+)")


@dataclass
class LogLine:
    file: str
    line: int
    text: str


@dataclass
class LogFacts:
    files: list[str] = field(default_factory=list)
    lines: list[LogLine] = field(default_factory=list)  # all lines, capped per file
    markers: dict[str, list[LogLine]] = field(default_factory=dict)
    finals: list[LogLine] = field(default_factory=list)  # the last val_bpb line of each log
    kv: dict[str, str] = field(default_factory=dict)  # key=value / key: value pairs seen in the logs

    def has(self, kind: str) -> bool:
        return bool(self.markers.get(kind))

    def search(self, needle: str, limit: int = 3) -> list[LogLine]:
        out = []
        for ll in self.lines:
            if needle in ll.text:
                out.append(ll)
                if len(out) >= limit:
                    break
        return out


MAX_LINES_PER_LOG = 200_000


def read_log_facts(evidence) -> LogFacts:
    lf_out = LogFacts()
    folder = evidence.folder
    for lf in evidence.logs:
        lf_out.files.append(lf.path)
        parsed_final = None
        for run in getattr(lf, "runs", []) or []:
            if run.final is not None:
                parsed_final = LogLine(lf.path, run.final.line, run.final.text)
            for k, v in (run.hyperparameters or {}).items():
                lf_out.kv.setdefault(str(k), str(v))
            for kind, items in (run.markers or {}).items():
                for (ln, text) in items:
                    lf_out.markers.setdefault(kind, []).append(LogLine(lf.path, ln, text))
        try:
            text = read_text(folder.path / lf.path, folder.root).text
        except UnreadableFile:
            continue
        last_final = None
        for i, line in enumerate(text.split("\n")[:MAX_LINES_PER_LOG], 1):
            if not line:
                continue
            ll = LogLine(lf.path, i, line.rstrip())
            lf_out.lines.append(ll)
            if "val_bpb" in line and _FINAL.search(line):
                last_final = ll
            for kind, pat in MARKERS.items():
                if pat.search(line):
                    lf_out.markers.setdefault(kind, []).append(ll)
            if len(line) < 400:
                for k, v in _KV.findall(line):
                    lf_out.kv.setdefault(k, v)
        final = parsed_final or last_final
        if final:
            lf_out.finals.append(final)
    return lf_out


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
