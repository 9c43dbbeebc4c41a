"""The isolated runner: every record folder is audited in a worker process (``auditor.worker``),
never in the calling one, so that a hostile folder can only take down its own worker: an analysis
that runs past the per-folder time limit is killed, a worker that dies (recursion, memory cap, a
crash in native code) is replaced, and either way the folder gets one clear line in the report and
the run goes on. ``jobs`` workers run at once; results are put back in discovery order, so the
report does not depend on ``jobs``. ``pgolf audit``, the GitHub Action and the pre-commit hook all
audit through ``run_isolated`` with the limits of ``auditor.limits``.

Nothing from the audited tree is ever imported: workers start with ``-P`` (``PYTHONSAFEPATH``) and
the caller drops the working directory and audited folders from ``sys.path`` (``scrub_sys_path``)
before it imports anything lazily (``python -m auditor`` run from inside a hostile checkout would
otherwise import its ``rules/`` package).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import sys
import time
import types
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import wait as _wait_any
from pathlib import Path
from typing import Callable

from auditor.context import AuditOptions
from auditor.discover import Discovery, RecordFolder
from auditor.limits import (  # noqa: F401  (Caps, cap_* and sanitize re-exported for older callers)
    DEFAULT_FOLDER_TIMEOUT_S, MAX_ANSWER_BYTES, Caps, cap_record, cap_report, folder_timeout, in_process_requested, sanitize,
    worker_memory_mb,
)
from auditor.model import VERDICT_REVIEW, Problem, RecordResult, Report
from auditor.worker import FileTiming


@dataclass
class AuditRun:
    report: Report
    timings: list[FileTiming]
    failed: list[str]  # display paths of folders whose audit timed out or whose worker died
    seconds: float
    jobs: int

    def exit_code(self, fail_on: str) -> int:
        return exit_code(self.report, fail_on, self.failed)


def exit_code(report: Report, fail_on: str, failed: list[str]) -> int:
    """0 or 1 as ``--fail-on`` asks; a folder that could not be audited never passes silently
    (a hostile one could time out on purpose)."""
    from auditor.model import Severity

    code = report.exit_code(None if fail_on == "never" else Severity.parse(fail_on))
    return max(code, 1) if failed and fail_on != "never" else code


# --- auditing many folders ----------------------------------------------------------------------

def audit_folders(disc: Discovery, options: AuditOptions, *, jobs: int = 1, timeout_s: float = DEFAULT_FOLDER_TIMEOUT_S,
                  memory_mb: int | None = None, caps: Caps | None = None,
                  progress: Callable[[int, int, str], None] | None = None, timings: bool = False,
                  in_process: bool | None = None, root: Path | None = None,
                  worker_target: Callable | None = None) -> AuditRun:
    """Audit every discovered folder; never raises for a folder's sake.

    ``worker_target`` replaces the workers' main loop (tests use it to make a worker hang or die);
    it must be importable by reference and take ``(conn, options, memory_mb, caps, cwd, env, runner_pid)``."""
    from auditor.pipeline import rule_catalog, tool_info

    t0 = time.perf_counter()
    caps = caps or Caps()
    memory_mb = worker_memory_mb(memory_mb)
    if in_process is None:
        in_process = in_process_requested()
    jobs = max(1, os.cpu_count() or 1) if jobs <= 0 else jobs
    report = Report(tool=tool_info(), errors=list(disc.problems), root=str(root or Path.cwd()), rules=rule_catalog())
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


def run_isolated(disc: Discovery, options: AuditOptions, *, jobs: int = 1, timeout_s: float | None = None,
                 human: bool = False, **kw) -> AuditRun:
    """The one way an entry point audits: workers with the time and memory limits of
    ``auditor.limits`` (the caller's, else the environment's, else the defaults), then the report
    capped (and, for the human formats, sanitised)."""
    scrub_sys_path([f.path for f in disc.folders])
    from auditor.waivers import reviewer_side

    reviewer_side(options, disc.folders, base=disc.changed_since, cwd=disc.changed_cwd)  # never the record's own waivers
    run = audit_folders(disc, options, jobs=jobs, timeout_s=folder_timeout(timeout_s), **kw)
    cap_report(run.report, kw.get("caps") or Caps(), human=human)
    return run


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
                            # bounded: a worker's answer over the cap ends that worker, not this process
                            index, rec, err, t = pickle.loads(w.conn.recv_bytes(MAX_ANSWER_BYTES + (1 << 20)))
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
