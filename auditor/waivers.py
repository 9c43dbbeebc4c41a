"""Suppressions and reviewed waivers: the only ways a finding stops counting.

Two sources, both explicit and both carrying a reason (tooling.md §0 point 14: never a silent skip):

* a line comment in the record's own files, on the finding's line or the line above::

      h = hash((prev, tgt))  # pgolf: allow NGRAM-TARGET-IN-KEY -- key is (prev, tgt) of the *scored* prefix only

* a reviewed waiver file, ``pgolf-waivers.toml`` (``--waivers FILE``, else the one in the working
  directory, else the one at the root of the audited tree)::

      [[waiver]]
      folder = "records/track_10min_16mb/2026-03-17_NaiveBaseline"   # relative to the waiver file; globs allowed
      rule = "SUBMISSION-FILES"                                      # rule id or code; "*" for every rule
      reason = "baseline predates the three-seed requirement"
      who = "cocohearts"
      # file = "train_gpt.py"   (optional: only findings in this file)

A waived finding stays in every report with ``waived`` set to the reason; it no longer counts
toward the verdict or the exit code. A suppression or waiver without a reason (or a waiver
without ``who``) waives nothing and is itself an error finding, ``WAIVER-REASON``.
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path

from auditor.fs import UnreadableFile, read_text
from auditor.model import Finding, Problem, Severity

RULE_ID = "WAIVER-REASON"
RULE_CODE = "PG901"
RULING = "https://github.com/openai/parameter-golf/blob/main/README.md#submission-process"
FIX = "Say why the finding does not apply: `# pgolf: allow RULE-ID -- reason`, or give the waiver entry a reason and who."
WAIVER_FILE = "pgolf-waivers.toml"

# "# pgolf: allow RULE-A, PG101 -- the reason"; the reason is everything after "--".
_SUPPRESS = re.compile(r"#\s*pgolf:\s*allow\b\s*(?P<rules>[A-Za-z0-9_,\-\s]*?)\s*(?:--(?P<reason>.*))?$")


@dataclass
class Suppression:
    file: str
    line: int  # 1-based line of the comment
    rules: set[str]
    reason: str
    text: str


@dataclass
class Waiver:
    source: str  # the waiver file as shown to the user
    line: int  # line of its [[waiver]] header
    folder: str
    rule: str
    reason: str
    who: str
    file: str | None
    base: Path  # the directory ``folder`` is relative to


# ---- suppressions --------------------------------------------------------------------------------

# An inline suppression is written by the entrant, a waiver by a reviewer; policy tells them apart by this.
SUPPRESSED_PREFIX = "suppressed at"

def parse_suppressions(rel: str, text: str) -> list[Suppression]:
    out: list[Suppression] = []
    if "pgolf:" not in text:
        return out
    for i, line in enumerate(text.split("\n"), start=1):
        if "pgolf:" not in line:
            continue
        m = _SUPPRESS.search(line)
        if not m:
            continue
        ids = {r.strip().upper() for r in re.split(r"[,\s]+", m.group("rules") or "") if r.strip()}
        out.append(Suppression(rel, i, ids, (m.group("reason") or "").strip(), line.strip()))
    return out


def _rule_matches(pattern_ids: set[str], f: Finding) -> bool:
    return "*" in pattern_ids or f.rule.upper() in pattern_ids or (bool(f.code) and f.code.upper() in pattern_ids)


def _texts(ev, wanted: set[str]) -> list[tuple[str, str]]:
    """(path, text) of the record's files that can carry a suppression: its Python sources as
    read (a wrapper and the code decoded from it share a path, so both are kept) and any other
    text file a finding points at."""
    texts: list[tuple[str, str]] = []
    have: set[str] = set()
    for cf in getattr(ev.code, "files", []):
        if cf.text and cf.path in ev.folder.files and (cf.path, cf.text) not in texts:
            texts.append((cf.path, cf.text))
            have.add(cf.path)
    for rel in sorted(wanted - have):
        if rel not in ev.folder.files:
            continue
        try:
            texts.append((rel, read_text(ev.folder.path / rel, ev.folder.root).text))
        except UnreadableFile:
            continue
    return texts


# ---- waiver file ---------------------------------------------------------------------------------

_CACHE: dict[tuple[str, float], tuple[list[Waiver], list[Problem]]] = {}


def find_waiver_file(options, root: Path | None) -> tuple[Path | None, Problem | None]:
    given = getattr(options, "waivers_file", None)
    if given:
        p = Path(given)
        if not p.is_file():
            return None, Problem(str(given), "waiver file not found")
        return p, None
    for d in (Path.cwd(), root):
        if d is not None and (d / WAIVER_FILE).is_file():
            return d / WAIVER_FILE, None
    return None, None


def load_waivers(path: Path) -> tuple[list[Waiver], list[Problem]]:
    try:
        key = (str(path.resolve()), path.stat().st_mtime)
    except OSError as exc:
        return [], [Problem(str(path), f"cannot read waiver file ({exc.strerror or exc})")]
    if key not in _CACHE:
        _CACHE[key] = _parse_waivers(path)
    return _CACHE[key]


def _parse_waivers(path: Path) -> tuple[list[Waiver], list[Problem]]:
    shown = _shown(path)
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return [], [Problem(shown, "waiver files need Python 3.11 or newer (tomllib)")]
    try:
        text = path.read_text(encoding="utf-8-sig")
        doc = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Problem(shown, f"cannot read waiver file ({exc})")]
    except tomllib.TOMLDecodeError as exc:
        return [], [Problem(shown, f"invalid TOML: {exc}")]
    entries = doc.get("waiver", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return [], [Problem(shown, "expected [[waiver]] tables")]
    header_lines = [i for i, line in enumerate(text.split("\n"), start=1) if line.strip().startswith("[[waiver]]")]
    out: list[Waiver] = []
    problems: list[Problem] = []
    for n, e in enumerate(entries):
        line = header_lines[n] if n < len(header_lines) else 1
        folder, rule = e.get("folder"), e.get("rule")
        if not isinstance(folder, str) or not folder.strip() or not isinstance(rule, str) or not rule.strip():
            problems.append(Problem(f"{shown}:{line}", "waiver needs a folder and a rule; entry ignored"))
            continue
        reason, who = e.get("reason"), e.get("who")
        out.append(Waiver(
            source=shown, line=line, folder=folder.strip(), rule=rule.strip().upper(),
            reason=reason.strip() if isinstance(reason, str) else "",
            who=who.strip() if isinstance(who, str) else "",
            file=e.get("file") if isinstance(e.get("file"), str) else None,
            base=path.resolve().parent,
        ))
    return out, problems


def _shown(path: Path) -> str:
    try:
        return os.path.relpath(path, Path.cwd()).replace(os.sep, "/")
    except ValueError:
        return str(path)


def waiver_applies_to_folder(w: Waiver, folder: Path) -> bool:
    """``folder`` is a path or glob relative to the waiver file's directory (``..`` allowed)."""
    target = folder.resolve().as_posix()
    pattern = Path(os.path.normpath(w.base / w.folder.rstrip("/"))).as_posix()
    return target == pattern or fnmatch.fnmatchcase(target, pattern)


# ---- apply ---------------------------------------------------------------------------------------

def _reason_finding(file: str, line: int | None, message: str, evidence: list[str]) -> Finding:
    return Finding(rule=RULE_ID, severity=Severity.ERROR, file=file, line=line, message=message,
                   evidence=evidence, ruling=RULING, fix=FIX, code=RULE_CODE)


def apply(rec, ev, options) -> None:
    """Mark the findings of ``rec`` that a suppression or a waiver covers; add WAIVER-REASON
    findings for the ones that give no reason. Never raises: a failure is one line in rec.errors."""
    try:
        _apply(rec, ev, options)
    except Exception as exc:  # the findings stay, unwaived: failing safe means counting them
        rec.errors.append(Problem(WAIVER_FILE, f"waivers could not be applied: {type(exc).__name__}: {exc}"))


def _apply(rec, ev, options) -> None:
    new: list[Finding] = []
    report_reasonless = options is None or options.only_rules is None or RULE_ID in options.only_rules

    # Line suppressions in the record's own files.
    texts = _texts(ev, {f.file for f in rec.findings if f.file and f.line})
    by_file: dict[str, dict[int, list[Suppression]]] = {}
    reported: set[tuple[str, int, str]] = set()
    for rel, text in texts:
        for s in parse_suppressions(rel, text):
            by_file.setdefault(rel, {}).setdefault(s.line, []).append(s)
            if (not s.reason or not s.rules) and (rel, s.line, s.text) not in reported:
                reported.add((rel, s.line, s.text))
                what = "names no rule" if not s.rules else "gives no reason after `--`"
                new.append(_reason_finding(rel, s.line, f"suppression {what}; it waives nothing", [s.text]))
    for f in rec.findings:
        if f.waived or not f.file or not f.line:
            continue
        lines = by_file.get(f.file, {})
        for s in lines.get(f.line, []) + lines.get(f.line - 1, []):
            if s.reason and s.rules and _rule_matches(s.rules, f):
                f.waived = f"{SUPPRESSED_PREFIX} {s.file}:{s.line}: {s.reason}"
                break

    # The reviewed waiver file.
    path, problem = find_waiver_file(options, getattr(ev.folder, "root", None))
    if problem:
        rec.errors.append(problem)
    if path is not None:
        waivers, problems = load_waivers(path)
        rec.errors.extend(problems)
        for w in waivers:
            if not waiver_applies_to_folder(w, ev.folder.path):
                continue
            if not w.reason or not w.who:
                missing = " and ".join(x for x, v in (("reason", w.reason), ("who", w.who)) if not v)
                # Reported on the folder itself: the waiver file lies outside it (SARIF paths stay inside).
                new.append(_reason_finding("", None, f"waiver {w.source}:{w.line} for {w.rule} has no {missing}; it waives nothing",
                                           [f"{w.source}:{w.line}: [[waiver]] folder = {w.folder!r} rule = {w.rule!r}"]))
                continue
            for f in rec.findings:
                if f.waived or f.rule == RULE_ID:
                    continue
                if w.file is not None and f.file != w.file:
                    continue
                if _rule_matches({w.rule}, f):
                    f.waived = f"waived by {w.who} ({w.source}:{w.line}): {w.reason}"

    if report_reasonless:
        rec.findings.extend(new)
        rec.findings.sort(key=lambda f: (-f.severity.rank, f.rule, f.file, f.line or 0))

