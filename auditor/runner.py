"""`pgolf audit` behind the CLI: discovery, isolated parallel workers, progress, capped output, exit code.

Every record folder is audited in a worker process (``auditor.worker``), never in this one, so that
a hostile folder can only take down its own worker: an analysis that runs past the per-folder time
limit is killed, a worker that dies (recursion, memory cap, a crash in native code) is replaced, and
either way the folder gets one clear line in the report and the run goes on. ``--jobs N`` runs N
workers at once; results are put back in discovery order, so the report does not depend on N.

Nothing from the audited tree is ever imported: workers start with ``-P`` (``PYTHONSAFEPATH``) and
this process drops the working directory and audited folders from ``sys.path`` before it imports
anything lazily (``python -m auditor`` run from inside a hostile checkout would otherwise import its
``rules/`` package). Reports are capped (findings per rule and per folder, evidence lines, text
length) and, for the human formats, stripped of terminal control characters.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import re
import sys
import time
import types
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, is_dataclass
from enum import Enum
from multiprocessing.connection import wait as _wait_any
from pathlib import Path
from typing import Any, Callable

from auditor.context import AuditOptions
from auditor.discover import Discovery, RecordFolder, changed_folders, discover
from auditor.model import VERDICT_REVIEW, Problem, RecordResult, Report, Severity
from auditor.worker import FileTiming

DEFAULT_FOLDER_TIMEOUT_S = 120.0  # a real folder audits in well under a second
DEFAULT_WORKER_MEMORY_MB = 4096
ENV_TIMEOUT = "PGOLF_FOLDER_TIMEOUT"  # seconds per folder
ENV_MEMORY = "PGOLF_WORKER_MEMORY_MB"  # address-space cap of a worker; 0 = none
ENV_IN_PROCESS = "PGOLF_IN_PROCESS"  # "1": audit in this process (debugging; no isolation, no time limit)
ENV_TIMINGS_FILE = "PGOLF_TIMINGS_FILE"  # write per-file timings of the run to this JSON file
HUMAN_FORMATS = ("text", "markdown", "github")


@dataclass
class Caps:
    """Output caps: a folder with a million findings still gives a readable, bounded report."""

    findings_per_rule: int = 50  # per folder
    findings_per_record: int = 300
    evidence_lines: int = 20
    evidence_chars: int = 500
    text_chars: int = 2000  # message, fix, note
    path_steps: int = 50
    errors_per_record: int = 100
    report_errors: int = 1000


@dataclass
class AuditRun:
    report: Report
    timings: list[FileTiming]
    failed: list[str]  # display paths of folders whose audit timed out or whose worker died
    seconds: float
    jobs: int


# --- the command ------------------------------------------------------------------------------

def run_audit(*, paths, fmt, output, fail_on, changed, against, rulebook, only_rules, jobs, waivers, quiet,
              folder_timeout: float | None = None) -> int:
    options = AuditOptions(against=against, rulebook=rulebook, only_rules=set(r.upper() for r in only_rules) or None,
                           waivers_file=str(waivers) if waivers else None)
    scrub_sys_path([])
    try:
        if changed:
            disc, _ = changed_folders(paths, changed)
        else:
            disc = discover(paths)
    except Exception as exc:  # discovery must not end in a traceback either
        _stderr_line(f"pgolf: discovery failed: {type(exc).__name__}: {exc}")
        return 2
    scrub_sys_path([f.path for f in disc.folders])
    timeout = folder_timeout if folder_timeout is not None else _env_float(ENV_TIMEOUT, DEFAULT_FOLDER_TIMEOUT_S)
    want_timings = bool(os.environ.get(ENV_TIMINGS_FILE))
    with progress_bar(len(disc.folders), quiet) as progress:
        run = audit_folders(disc, options, jobs=jobs, timeout_s=timeout, progress=progress, timings=want_timings)
    report = run.report
    if want_timings:
        _write_timings(Path(os.environ[ENV_TIMINGS_FILE]), run)
    cap_report(report, Caps(), human=fmt in HUMAN_FORMATS)
    from auditor.report import render

    try:
        # a file written from a terminal must not carry colour codes
        if changed and not report.records and not report.errors and fmt == "text":
            text = f"no record folder changed since {changed}; nothing to audit\n"
        else:
            text = render(report, fmt, color=False) if (output and fmt == "text") else render(report, fmt)
    except Exception as exc:  # a renderer bug: say so in one line; the JSON report is the fallback
        _stderr_line(f"pgolf: the {fmt} renderer failed ({type(exc).__name__}: {exc}); writing JSON instead")
        text = render(report, "json")
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates from odd file names
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            _stderr_line(f"pgolf: cannot write {output}: {exc.strerror or exc}")
            return 2
    else:
        _write_stdout(text)
    for p in report.errors:
        _stderr_line(f"pgolf: {p.line()}")
    for path in run.failed:
        _stderr_line(f"pgolf: {path}: not fully audited (see its errors in the report)")
    if not report.records:
        # a branch that touches no record folder has nothing to audit: that is not an error
        return 0 if changed and not report.errors else 2
    code = report.exit_code(None if fail_on == "never" else Severity.parse(fail_on))
    # A folder that could not be audited must not pass silently (a hostile one could time out on purpose).
    if run.failed and fail_on != "never":
        code = max(code, 1)
    return code


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, "") or default)
    except ValueError:
        return default


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, "") or default)
    except ValueError:
        return default


# --- auditing many folders ----------------------------------------------------------------------

def audit_folders(disc: Discovery, options: AuditOptions, *, jobs: int = 1, timeout_s: float = DEFAULT_FOLDER_TIMEOUT_S,
                  memory_mb: int | None = None, caps: Caps | None = None,
                  progress: Callable[[int, int, str], None] | None = None, timings: bool = False,
                  in_process: bool | None = None, root: Path | None = None,
                  worker_target: Callable | None = None) -> AuditRun:
    """Audit every discovered folder; never raises for a folder's sake.

    ``worker_target`` replaces the workers' main loop (tests use it to make a worker hang or die);
    it must be importable by reference and take ``(conn, options, memory_mb, caps, cwd, env, runner_pid)``."""
    from auditor.pipeline import tool_info

    t0 = time.perf_counter()
    caps = caps or Caps()
    memory_mb = _env_int(ENV_MEMORY, DEFAULT_WORKER_MEMORY_MB) if memory_mb is None else memory_mb
    if in_process is None:
        in_process = os.environ.get(ENV_IN_PROCESS) == "1"
    jobs = max(1, os.cpu_count() or 1) if jobs <= 0 else jobs
    report = Report(tool=tool_info(), errors=list(disc.problems), root=str(root or Path.cwd()))
    folders = disc.folders
    n = len(folders)
    results: list[RecordResult | None] = [None] * n
    all_timings: list[FileTiming] = []
    failed: list[str] = []

    def done(i: int, rec: RecordResult | None, err: str | None, t: list[FileTiming], seconds: float) -> None:
        if rec is None:
            rec = failed_record(folders[i], err or "audit failed", seconds)
            failed.append(folders[i].display)
        results[i] = rec
        all_timings.extend(t)
        if progress:
            progress(sum(r is not None for r in results), n, folders[i].display)

    if progress:
        progress(0, n, "")
    if in_process:
        from auditor.worker import audit_one

        for i, folder in enumerate(folders):
            s0 = time.perf_counter()
            rec, err, t = audit_one(folder, options, timings)
            if rec is not None:
                cap_record(rec, caps)
            done(i, rec, err, t, time.perf_counter() - s0)
    elif n:
        _WorkerPool(min(jobs, n), options, memory_mb, caps, timeout_s, worker_target or _serve).run(folders, timings, done)
    report.records = [r for r in results if r is not None]
    return AuditRun(report, all_timings, failed, time.perf_counter() - t0, jobs)


def failed_record(folder: RecordFolder, message: str, seconds: float) -> RecordResult:
    """The record of a folder whose audit did not finish: needs review, and says why in one line."""
    rec = RecordResult(path=folder.display, track=folder.track, errors=list(folder.problems), seconds=seconds)
    rec.errors.append(Problem(folder.display, message))
    rec.verdict = VERDICT_REVIEW
    return rec


def _serve(conn, options, memory_mb, caps, cwd=None, env=None, runner_pid=None) -> None:  # workers' target
    from auditor.worker import serve

    serve(conn, options, memory_mb, caps, cwd, env, runner_pid)


class _Worker:
    def __init__(self, ctx, options, memory_mb: int, caps: Caps, target: Callable):
        parent, child = ctx.Pipe()
        # A forkserver child inherits the server's working directory and environment, fixed when the
        # server started; relative paths (--against, the default waiver file) need this process's.
        args = (child, options, memory_mb, caps, os.getcwd(), dict(os.environ), os.getpid())
        self.proc = ctx.Process(target=target, args=args, daemon=True, name="pgolf-audit-worker")
        self.proc.start()
        child.close()
        self.conn = parent
        self.task: int | None = None
        self.started = 0.0

    def give(self, index: int, folder: RecordFolder, timings: bool) -> bool:
        self.task, self.started = index, time.monotonic()
        try:
            self.conn.send((index, folder, timings))
            return True
        except (OSError, ValueError):
            return False

    def death(self) -> str:
        self.proc.join(2)
        code = self.proc.exitcode
        if code is None:
            return "the worker process stopped answering"
        if code < 0:
            import signal

            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (out of memory?)" if name == "SIGKILL" else ""
            return f"the worker process died ({name}{hint})"
        return f"the worker process exited with code {code}"

    def stop(self, kill: bool = False) -> None:
        if not kill:
            try:
                self.conn.send(None)
            except (OSError, ValueError):
                pass
            self.proc.join(2)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


class _WorkerPool:
    """N worker processes, one folder each at a time, killed and replaced on time-out or death."""

    def __init__(self, jobs: int, options: AuditOptions, memory_mb: int, caps: Caps, timeout_s: float, target: Callable):
        self.jobs, self.options, self.memory_mb, self.caps, self.timeout_s = jobs, options, memory_mb, caps, timeout_s
        self.target = target
        self.ctx = _context()

    def _new(self) -> _Worker:
        with _safe_child_env():
            return _Worker(self.ctx, self.options, self.memory_mb, self.caps, self.target)

    def run(self, folders: list[RecordFolder], timings: bool, done) -> None:
        pending = deque(range(len(folders)))
        workers: list[_Worker] = []
        try:
            workers = [self._new() for _ in range(self.jobs)]
            while True:
                for w in workers:
                    while w.task is None and pending:
                        i = pending.popleft()
                        if not w.give(i, folders[i], timings):
                            done(i, None, f"audit failed: {w.death()}", [], 0.0)
                            w = self._replace(workers, w)
                busy = [w for w in workers if w.task is not None]
                if not busy:
                    break
                now = time.monotonic()
                wait_s = max(0.0, min(w.started + self.timeout_s for w in busy) - now)
                ready = _wait_any([w.conn for w in busy], timeout=min(wait_s, 1.0))
                for w in busy:
                    if w.conn in ready:
                        try:
                            index, rec, err, t = w.conn.recv()
                        except (EOFError, OSError) as exc:
                            why = w.death() if isinstance(exc, EOFError) else f"lost the worker ({exc})"
                            done(w.task, None, f"audit failed: {why}; the folder is not audited", [], time.monotonic() - w.started)
                            self._replace(workers, w)
                            continue
                        except Exception as exc:  # an answer that does not unpickle
                            done(w.task, None, f"audit failed: unreadable answer from the worker ({type(exc).__name__})", [], 0.0)
                            self._replace(workers, w)
                            continue
                        w.task = None
                        done(index, rec, err, t, time.monotonic() - w.started)
                    elif time.monotonic() - w.started > self.timeout_s:
                        done(w.task, None, f"audit stopped after {self.timeout_s:g} s (the per-folder time limit); "
                                           "the folder is not audited, review it by hand", [], self.timeout_s)
                        self._replace(workers, w, kill=True)
        finally:
            for w in workers:
                w.stop(kill=w.task is not None)

    def _replace(self, workers: list[_Worker], w: _Worker, kill: bool = True) -> _Worker:
        w.stop(kill=kill)
        w.task = None
        fresh = self._new()
        workers[workers.index(w)] = fresh
        return fresh


def _context():
    methods = mp.get_all_start_methods()
    if "forkserver" in methods:  # workers fork from a clean server: no threads, no state of this process
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["auditor.runner"])
        return ctx
    return mp.get_context("spawn")


@contextmanager
def _safe_child_env():
    """Start children with -P semantics (no working directory on ``sys.path``: a hostile checkout's
    ``multiprocessing/`` or ``rules/`` must not shadow ours), and without re-running this process's
    ``__main__`` in them (multiprocessing would otherwise re-import the main script or module)."""
    old = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main
        if old is None:
            os.environ.pop("PYTHONSAFEPATH", None)
        else:
            os.environ["PYTHONSAFEPATH"] = old


def scrub_sys_path(audited: list[Path]) -> list[str]:
    """Drop the working directory and anything inside the audited record folders from ``sys.path``;
    returns what was dropped. The folder that holds pgolf's own packages is kept (an editable
    install may sit in a checkout that is itself audited)."""
    own = Path(__file__).resolve().parents[1]
    cwd = _resolve(Path.cwd())
    tops = [_resolve(p) for p in audited]
    dropped = []
    for entry in list(sys.path):
        p = _resolve(Path(entry or "."))
        if p == own:
            continue
        if entry in ("", ".") or p == cwd or any(p == t or t in p.parents for t in tops):
            sys.path.remove(entry)
            dropped.append(entry)
    return dropped


def _resolve(p: Path) -> Path:
    try:
        return p.resolve()
    except (OSError, RuntimeError, ValueError):
        return p


# --- progress -------------------------------------------------------------------------------------

@contextmanager
def progress_bar(total: int, quiet: bool):
    """A rich progress bar on stderr when many folders are audited and stderr is a terminal."""
    if quiet or total < 2 or not _isatty(sys.stderr):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("auditing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.description}"), console=Console(stderr=True), transient=True)
    task = bar.add_task("", total=total)

    def update(done: int, n: int, label: str) -> None:
        bar.update(task, completed=done, description=_clean(label.rsplit("/", 1)[-1], True)[:60])

    with bar:
        yield update


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# --- output caps and sanitising -------------------------------------------------------------------

def cap_record(rec: RecordResult, caps: Caps) -> RecordResult:
    """Bound one folder's findings and errors; what is dropped is counted in one line. Idempotent."""
    if getattr(rec, "_capped", None) == caps:
        return rec
    order = sorted(rec.findings, key=lambda f: (f.waived is not None, -f.severity.rank))  # stable: keeps rule order
    kept, per_rule, dropped = [], Counter(), Counter()
    for f in order:
        if per_rule[f.rule] >= caps.findings_per_rule or len(kept) >= caps.findings_per_record:
            dropped[f.rule] += 1
            continue
        per_rule[f.rule] += 1
        kept.append(f)
    if dropped:
        kept_ids = {id(f) for f in kept}
        rec.findings = [f for f in rec.findings if id(f) in kept_ids]
    for f in rec.findings:
        f.message = _cut(f.message, caps.text_chars)
        f.fix = _cut(f.fix, caps.text_chars)
        f.note = _cut(f.note, caps.text_chars) if f.note else f.note
        more = len(f.evidence) - caps.evidence_lines
        f.evidence = [_cut(e, caps.evidence_chars) for e in f.evidence[: caps.evidence_lines]]
        if more > 0:
            f.evidence.append(f"… {more} more lines not shown")
        f.path = [_cut(p, caps.evidence_chars) for p in f.path[: caps.path_steps]]
    extra = len(rec.errors) - caps.errors_per_record
    rec.errors = rec.errors[: caps.errors_per_record]
    for p in rec.errors:
        p.file, p.message = _cut(p.file, caps.evidence_chars), _cut(p.message, caps.text_chars)
    if extra > 0:
        rec.errors.append(Problem(rec.path, f"{extra} more unreadable items not shown (report cap)"))
    if dropped:
        which = ", ".join(f"{r} ×{c}" for r, c in sorted(dropped.items()))
        rec.errors.append(Problem(rec.path, f"{sum(dropped.values())} more findings not shown (report caps: "
                                            f"{caps.findings_per_rule} per rule, {caps.findings_per_record} per folder): {which}"))
    rec._capped = caps  # travels with the record (pickled __dict__), so the parent does not cap twice
    return rec


def cap_report(report: Report, caps: Caps, human: bool = False) -> Report:
    for rec in report.records:
        cap_record(rec, caps)
    extra = len(report.errors) - caps.report_errors
    report.errors = report.errors[: caps.report_errors]
    if extra > 0:
        report.errors.append(Problem(".", f"{extra} more problems not shown (report cap)"))
    for p in report.errors:
        p.file, p.message = _cut(p.file, caps.evidence_chars), _cut(p.message, caps.text_chars)
    if human:
        sanitize(report)
    return report


def _cut(text: str, limit: int) -> str:
    if not isinstance(text, str) or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


# C0/C1 controls (ANSI escapes, carriage returns that redraw a terminal line), bidi overrides
# ("Trojan Source"), and lone surrogates from undecodable file names.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_NL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_MULTILINE_FIELDS = {"message", "fix", "ruling", "note"}  # rule-written text may span lines


def _escape(m: re.Match) -> str:
    ch = m.group(0)
    o = ord(ch)
    if ch == "\n":
        return "\\n"
    if 0xDC80 <= o <= 0xDCFF:  # surrogateescape of an undecodable byte
        return f"\\x{o - 0xDC00:02x}"
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def _clean(text: str, one_line: bool) -> str:
    return (_UNSAFE_NL if one_line else _UNSAFE).sub(_escape, text)


def sanitize(obj: Any, field_name: str = "", depth: int = 0) -> Any:
    """Escape terminal control characters in every string of a report (human formats only: JSON
    and SARIF escape them already). Mutates dataclasses in place; returns the cleaned value."""
    if depth > 20:
        return obj
    if isinstance(obj, Enum):
        return obj
    if isinstance(obj, str):
        return _clean(obj, field_name not in _MULTILINE_FIELDS)
    if is_dataclass(obj) and not isinstance(obj, type):
        for f in fields(obj):
            if f.name == "raw":  # the parsed submission.json, never rendered as is
                continue
            setattr(obj, f.name, sanitize(getattr(obj, f.name), f.name, depth + 1))
        return obj
    if isinstance(obj, list):
        return [sanitize(v, field_name, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(sanitize(v, field_name, depth + 1) for v in obj)
    if isinstance(obj, dict):
        return {sanitize(k, "key", depth + 1): sanitize(v, field_name, depth + 1) for k, v in obj.items()}
    return obj


# --- writing ----------------------------------------------------------------------------------------

def _stderr_line(line: str) -> None:
    try:
        sys.stderr.write(_clean(line, True) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _write_stdout(text: str) -> None:
    """Write the report as UTF-8 whatever the locale; a closed pipe (``| head``) is not an error."""
    try:
        buf = getattr(sys.stdout, "buffer", None)
        if buf is not None:
            sys.stdout.flush()
            buf.write(text.encode("utf-8", "backslashreplace"))
            buf.flush()
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
    except BrokenPipeError:
        try:  # keep the interpreter from complaining when it flushes stdout at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
    except (OSError, ValueError):
        pass


def timings_json(run: AuditRun) -> dict[str, Any]:
    return {
        "folders": len(run.report.records),
        "failed": list(run.failed),
        "seconds": round(run.seconds, 3),
        "jobs": run.jobs,
        "timings": [asdict(t) for t in run.timings],
    }


def _write_timings(path: Path, run: AuditRun) -> None:
    try:
        path.write_text(json.dumps(timings_json(run), ensure_ascii=True), encoding="utf-8")
    except OSError as exc:
        _stderr_line(f"pgolf: cannot write {path}: {exc.strerror or exc}")
