"""Suppressions and reviewed waivers: the only ways a finding stops counting.

Two sources, both explicit and both carrying a reason (tooling.md §0 point 14: never a silent skip):

* a line comment in the record's own files, on the finding's line or the line above::

      h = hash((prev, tgt))  # pgolf: allow NGRAM-TARGET-IN-KEY -- key is (prev, tgt) of the *scored* prefix only

* a reviewed waiver file, ``pgolf-waivers.toml``, taken only from the reviewer's side: ``--waivers
  FILE``, else the one in the working directory; with ``--changed BASE`` (CI) the copy in the base
  revision, so a pull request cannot waive its own findings by adding or editing it. A waiver file
  inside an audited record folder, a symlinked one, or one the pull request changed is never read;
  WAIVER-REASON names it in a warning::

      [[waiver]]
      folder = "records/track_10min_16mb/2026-03-17_NaiveBaseline"   # relative to the waiver file; globs allowed
      rule = "SUBMISSION-FILES"                                      # rule id or code; "*" for every rule
      reason = "baseline predates the three-seed requirement"
      who = "cocohearts"
      # file = "train_gpt.py"   (optional: only findings in this file)

A waived finding stays in every report with ``waived`` set to the reason; it no longer counts
toward the verdict or the exit code. A suppression or waiver without a reason (or a waiver
without ``who``) waives nothing; the rule WAIVER-REASON (``rules/waiver_reason.py``) judges the
parsed suppressions and waivers this module collects before the rules run (``collect``) and
reports it as an error.
"""
from __future__ import annotations

import fnmatch
import os
import re
import stat
from dataclasses import dataclass, field
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

MAX_WAIVER_BYTES = 1 << 20
CTX_KEY = "waivers"  # where the pipeline puts ``collect``'s result for the WAIVER-REASON rule
# Set by ``reviewer_side`` in the main process: waiver files it would not read, said in every folder.
NOTES_KEY = "waiver_notes"
LOCATION_KEY = "waiver_location"  # (folder globs are relative to, name shown) of a base-revision copy
_LOCATION: dict[str, tuple[str, str]] = {}

_CACHE: dict[tuple, tuple[list[Waiver], list[Problem]]] = {}


@dataclass
class Collected:
    """What the waiver layer read for one folder, before any rule ran."""

    suppressions: list[Suppression] = field(default_factory=list)  # in the record's code
    waivers: list[Waiver] = field(default_factory=list)  # entries of the reviewer's file for this folder
    problems: list[Problem] = field(default_factory=list)  # the waiver file could not be read
    # waiver files not read: (file, why, in_folder); in_folder: a path inside the record folder
    ignored: list[tuple[str, str, bool]] = field(default_factory=list)


def _inside(path: Path, folder: Path) -> bool:
    try:
        real, top = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    except (OSError, ValueError):
        return False
    return real == top or top in real.parents


def find_waiver_file(options, folder: Path | None = None) -> tuple[Path | None, Problem | None]:
    """The reviewer's waiver file: ``--waivers FILE``, else ``pgolf-waivers.toml`` in the working
    directory. Never one inside ``folder`` (the audited record folder) and never a symlink."""
    given = getattr(options, "waivers_file", None)
    if given:
        p = Path(given)
        if os.path.islink(p):
            return None, Problem(str(given), "waiver file is a symlink; not followed (pass the file itself)")
        if not p.is_file():
            return None, Problem(str(given), "waiver file not found")
        if folder is not None and _inside(p, folder):
            return None, Problem(str(given), "waiver file lies inside the audited record folder; not read "
                                             "(waivers come from the reviewer, not from the record)")
        return p, None
    p = Path.cwd() / WAIVER_FILE
    if not os.path.lexists(p):
        return None, None
    if folder is not None and _inside(Path.cwd(), folder):
        return None, None  # the record's own file: WAIVER-REASON warns about it (``shipped_waiver_files``)
    if os.path.islink(p):
        return None, Problem(WAIVER_FILE, "waiver file is a symlink; not followed")
    return p, None


def _read_capped(path: Path) -> bytes:
    """The file's bytes: a regular file, opened without following a symlink or blocking on a FIFO."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(0, "not a regular file")
        if st.st_size > MAX_WAIVER_BYTES:
            raise OSError(0, f"{st.st_size:,} bytes, over the {MAX_WAIVER_BYTES:,}-byte cap")
        data = os.read(fd, MAX_WAIVER_BYTES + 1)
        if len(data) > MAX_WAIVER_BYTES:
            raise OSError(0, f"over the {MAX_WAIVER_BYTES:,}-byte cap")
        return data
    finally:
        os.close(fd)


def load_waivers(path: Path, location: tuple[str, str] | None = None) -> tuple[list[Waiver], list[Problem]]:
    try:
        st = os.lstat(path)
        key = (str(path.absolute()), st.st_mtime, st.st_size, location)
    except OSError as exc:
        return [], [Problem(str(path), f"cannot read waiver file ({exc.strerror or exc})")]
    if key not in _CACHE:
        _CACHE[key] = _parse_waivers(path, location)
    return _CACHE[key]


def _parse_waivers(path: Path, location: tuple[str, str] | None = None) -> tuple[list[Waiver], list[Problem]]:
    shown = location[1] if location else _shown(path)
    base_dir = Path(location[0]) if location else path.absolute().parent
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return [], [Problem(shown, "waiver files need Python 3.11 or newer (tomllib)")]
    try:
        text = _read_capped(path).decode("utf-8-sig")
        doc = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Problem(shown, f"cannot read waiver file ({getattr(exc, 'strerror', None) or exc})")]
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
            base=base_dir,
        ))
    return out, problems


def shipped_waiver_files(ev) -> list[tuple[str, str, bool]]:
    """Waiver files the record itself ships (never read), as (path in the folder, why, True)."""
    out = []
    for rel in list(ev.folder.files) + list(getattr(ev.folder, "symlinks", [])):
        if rel.rsplit("/", 1)[-1].lower() == WAIVER_FILE:
            out.append((rel, "shipped inside the record folder; waivers come only from the reviewer "
                             "(--waivers, or the base revision in CI), so it is not read", True))
    return out


def suppressions_in(ev) -> list[Suppression]:
    """The suppression comments in the record's code (as read by the evidence step)."""
    return [s for rel, text in _texts(ev, set()) for s in parse_suppressions(rel, text)]


def collect(ev, options) -> Collected:
    """Everything the waiver step will use for one folder, read before the rules run."""
    c = Collected()
    c.suppressions.extend(suppressions_in(ev))
    c.ignored.extend(shipped_waiver_files(ev))
    extra = getattr(options, "extra", None) or {}
    for note in extra.get(NOTES_KEY, []) or []:
        if isinstance(note, (list, tuple)) and len(note) == 2:
            c.ignored.append((str(note[0]), str(note[1]), False))
    path, problem = find_waiver_file(options, ev.folder.path)
    if problem:
        c.problems.append(problem)
    if path is not None:
        loc = extra.get(LOCATION_KEY)
        waivers, problems = load_waivers(path, tuple(loc) if loc and str(path) == options.waivers_file else None)
        c.problems.extend(problems)
        c.waivers = [w for w in waivers if waiver_applies_to_folder(w, ev.folder.path)]
    return c


def reviewer_side(options, folders=(), base: str | None = None, cwd: Path | None = None):
    """Settle, in the main process, which waiver file the workers may read; returns ``options``.

    * A waiver file inside an audited record folder is dropped (noted in every folder).
    * With ``base`` (``--changed``, CI), a waiver file inside the checkout is read as it is in the
      base revision, never as the pull request left it: a changed copy is noted, and a file the
      base does not have waives nothing.
    """
    cwd = (cwd or Path.cwd())
    extra = options.extra[NOTES_KEY] = []  # settled afresh for each run
    given = getattr(options, "waivers_file", None)
    path = Path(given) if given else cwd / WAIVER_FILE
    if not path.is_absolute():
        path = cwd / path
    if not os.path.lexists(path):
        return options
    for f in folders:
        if _inside(path, f.path):
            if given:  # a default-named file there is named by that folder's WAIVER-REASON (``shipped_waiver_files``)
                extra.append((_shown(path), "(--waivers) lies inside an audited record folder; waivers come only from "
                                            "the reviewer, so it is not read"))
            _mark_none(options)
            return options
    if base:
        from_base, why = _from_base_revision(path, base, cwd)
        if why:
            extra.append((_shown(path), why))
        if from_base is None:
            _mark_none(options)
        else:
            options.waivers_file = str(from_base)
            options.extra[LOCATION_KEY] = _LOCATION.get(str(from_base))
    return options


def _mark_none(options) -> None:
    """No reviewer waiver file for this run (an empty one, so the working directory's is not read)."""
    empty = _private_dir() / "none.toml"
    if not empty.exists():
        empty.write_text("", encoding="utf-8")
    options.waivers_file = str(empty)


_PRIVATE: list[Path] = []


def _private_dir() -> Path:
    if not _PRIVATE:
        import atexit
        import shutil
        import tempfile

        d = Path(tempfile.mkdtemp(prefix="pgolf-waivers-"))
        atexit.register(shutil.rmtree, d, True)
        _PRIVATE.append(d)
    return _PRIVATE[0]


def _from_base_revision(path: Path, base: str, cwd: Path) -> tuple[Path | None, str | None]:
    """(copy of the file as in the merge base of ``base`` and HEAD, note) for a file in the checkout;
    (the file itself, None) for one outside it (the reviewer's own)."""
    from auditor.discover import risky_git_config, run_git

    try:
        top_p = run_git(["rev-parse", "--show-toplevel"], cwd)
        if top_p.returncode != 0:
            return path, None
        top = Path(top_p.stdout.strip())
        if not _inside(path.parent, top) or os.path.islink(path):
            return (None, "is a symlink; not followed") if os.path.islink(path) else (path, None)
        if risky_git_config(top):
            return None, "cannot be read from the base revision (the checkout's git config names programs); not read"
        rel = Path(os.path.relpath(os.path.realpath(path), os.path.realpath(top))).as_posix()
        mb = run_git(["merge-base", "--end-of-options", base, "HEAD"], top)
        since = mb.stdout.strip() if mb.returncode == 0 and mb.stdout.strip() else base
        shown = run_git(["show", f"{since}:{rel}"], top, text=False)
    except (OSError, ValueError, __import__("subprocess").SubprocessError) as exc:
        return None, f"cannot be read from the base revision ({exc}); not read"
    if shown.returncode != 0:
        return None, f"is not in the base revision {base}: added by this change, so it is not read"
    if len(shown.stdout) > MAX_WAIVER_BYTES:
        return None, f"is over the {MAX_WAIVER_BYTES:,}-byte cap in the base revision; not read"
    copy = _private_dir() / WAIVER_FILE
    copy.write_bytes(shown.stdout)
    # findings and folder globs name the file where it lives in the checkout, not the private copy
    _LOCATION[str(copy)] = (str(path.absolute().parent), f"{_shown(path)}@{base}")
    note = None
    try:
        if _read_capped(path) != shown.stdout:
            note = f"is changed since the base revision {base}; the base revision's copy is used"
    except OSError:
        note = "is not a regular file in the checkout; the base revision's copy is used"
    return copy, note


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

def reason_finding(file: str, line: int | None, message: str, evidence: list[str],
                   severity: Severity = Severity.ERROR) -> Finding:
    return Finding(rule=RULE_ID, severity=severity, file=file, line=line, message=message,
                   evidence=evidence, ruling=RULING, fix=FIX, code=RULE_CODE)


def apply(rec, ev, options, collected: Collected | None = None) -> None:
    """Mark the findings of ``rec`` that a suppression or a reviewed waiver with a reason covers.
    Never raises: a failure is one line in rec.errors. (WAIVER-REASON, a rule, reports the
    suppressions and waivers that give no reason, from the same ``collect`` result.)"""
    try:
        _apply(rec, ev, options, collected if collected is not None else collect(ev, options))
    except Exception as exc:  # the findings stay, unwaived: failing safe means counting them
        rec.errors.append(Problem(WAIVER_FILE, f"waivers could not be applied: {type(exc).__name__}: {exc}"))


def _apply(rec, ev, options, c: Collected) -> None:
    rec.errors.extend(c.problems)
    # Line suppressions in the record's own files (and any other text file a finding points at).
    by_file: dict[str, dict[int, list[Suppression]]] = {}
    sups = list(c.suppressions)
    have = {s.file for s in sups} | {cf.path for cf in getattr(ev.code, "files", [])}
    for rel, text in _texts(ev, {f.file for f in rec.findings if f.file and f.line} - have):
        if rel not in have:
            sups.extend(parse_suppressions(rel, text))
    for s in sups:
        by_file.setdefault(s.file, {}).setdefault(s.line, []).append(s)
    for f in rec.findings:
        if f.waived or not f.file or not f.line or f.rule == RULE_ID:
            continue
        lines = by_file.get(f.file, {})
        for s in lines.get(f.line, []) + lines.get(f.line - 1, []):
            if s.reason and s.rules and _rule_matches(s.rules, f):
                f.waived = f"{SUPPRESSED_PREFIX} {s.file}:{s.line}: {s.reason}"
                break

    # The reviewer's waiver file.
    for w in c.waivers:
        if not w.reason or not w.who:
            continue  # waives nothing; WAIVER-REASON says so
        for f in rec.findings:
            # the reviewer's word also covers what the entrant suppressed: it has now been seen (policy.verdict)
            if (f.waived and not f.waived.startswith(SUPPRESSED_PREFIX)) or f.rule == RULE_ID:
                continue
            if w.file is not None and f.file != w.file:
                continue
            if _rule_matches({w.rule}, f):
                f.waived = f"waived by {w.who} ({w.source}:{w.line}): {w.reason}"
