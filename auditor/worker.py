"""One audit worker process: audits the record folders the runner sends it, one at a time.

The runner starts workers (``auditor.runner``) so that a hostile folder can only take down its
own worker: a parse that recurses too deeply, a decompression that eats the memory cap, an
analysis that never ends. The worker lowers its own limits first (address space, no core files),
silences its stdout/stderr so nothing it prints can garble the report or the progress bar, and
never imports anything from the audited tree (the runner starts it with ``-P``, so neither the
working directory nor the audited folder is on ``sys.path``).

Protocol over a ``multiprocessing`` pipe: the runner sends ``(index, RecordFolder, want_timings)``
or ``None`` to stop; the worker answers ``(index, RecordResult | None, error | None, timings)``.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass


@dataclass
class FileTiming:
    """How long one stage took on one file of one folder (for the soak benchmark)."""

    folder: str
    file: str
    stage: str  # "claims" | "log" | "code" | "measure" | "rules" | "folder"
    seconds: float


_timings: list[FileTiming] | None = None  # collecting when not None
_current_folder = ""
_instrumented = False


def harden_process(memory_mb: int, quiet_stdio: bool = True) -> None:
    """Limits of a worker: capped address space, no core dumps, no warnings, stdio to /dev/null."""
    try:
        import resource

        if memory_mb > 0:
            limit = memory_mb * 1024 * 1024
            _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            if hard == resource.RLIM_INFINITY or hard > limit:
                resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):  # not POSIX, or a lower limit already set: keep it
        pass
    warnings.simplefilter("ignore")  # SyntaxWarnings from parsing hostile code would flood stderr
    if quiet_stdio and not os.environ.get("PGOLF_WORKER_STDERR"):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)


def warm() -> None:
    """Import the pipeline and every rule once, before the first folder (errors show per folder)."""
    try:
        from auditor.pipeline import load_rules

        load_rules()
    except Exception:  # a broken rule module is reported by the folder audit that needs it
        pass


def _instrument() -> None:
    """Wrap the per-file readers and the pipeline stages with timers (timing runs only)."""
    global _instrumented
    if _instrumented:
        return
    _instrumented = True
    import auditor.evidence as ev
    import auditor.pipeline as pl

    def timed(fn, stage: str, file_arg: int | None):
        def wrapper(*args, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                if _timings is not None:
                    dt = time.perf_counter() - t0
                    name = str(args[file_arg]) if file_arg is not None and len(args) > file_arg else ""
                    _timings.append(FileTiming(_current_folder, name, stage, dt))
        return wrapper

    ev.read_claims = timed(ev.read_claims, "claims", 2)
    ev.read_log = timed(ev.read_log, "log", 2)
    ev.read_code = timed(ev.read_code, "code", None)
    pl.measure = timed(pl.measure, "measure", None)
    pl.run_rules = timed(pl.run_rules, "rules", None)


def audit_one(folder, options, want_timings: bool):
    """Audit one folder here; returns (RecordResult | None, error line | None, timings)."""
    global _timings, _current_folder
    from auditor.pipeline import audit_folder

    if want_timings:
        _instrument()
        _timings = []
        _current_folder = folder.display
    t0 = time.perf_counter()
    try:
        rec = audit_folder(folder, options)
        err = None
    except RecursionError:
        rec, err = None, "audit failed: nested too deeply to analyse (RecursionError)"
    except MemoryError:
        rec, err = None, "audit failed: out of memory (over the worker's memory cap)"
    except Exception as exc:  # last line of defence: one folder, one line
        rec, err = None, f"audit failed: {type(exc).__name__}: {exc}"
    timings = _timings or []
    if want_timings:
        timings.append(FileTiming(folder.display, "", "folder", time.perf_counter() - t0))
        # name the code stage after the entry script when the bundle knows it
        if rec is not None:
            for t in timings:
                if t.stage in ("code", "rules", "measure") and not t.file:
                    t.file = _entry_name(folder)
    _timings = None
    return rec, err, timings


def _entry_name(folder) -> str:
    from auditor.evidence.code import resolve_entry

    try:
        return resolve_entry(folder.files, None) or ""
    except Exception:
        return ""


def adopt(cwd: str | None, env: dict[str, str] | None, runner_pid: int | None = None) -> None:
    """Take the runner's working directory and environment (a forkserver child has the server's),
    and end this worker when the runner is gone (killed mid-run: no orphan keeps analysing)."""
    if runner_pid:
        threading.Thread(target=_watch_runner, args=(runner_pid,), daemon=True, name="pgolf-runner-watch").start()
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    if cwd:
        try:
            os.chdir(cwd)
        except OSError:
            pass


def _watch_runner(pid: int) -> None:
    while True:
        time.sleep(1.0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except OSError:  # exists but not ours to signal: still alive
            pass


def serve(conn, options, memory_mb: int, caps, cwd: str | None = None, env: dict[str, str] | None = None,
          runner_pid: int | None = None) -> None:
    """Worker main loop (the target of the runner's processes)."""
    adopt(cwd, env, runner_pid)
    harden_process(memory_mb)
    warm()
    from auditor.limits import cap_record

    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        index, folder, want_timings = task
        rec, err, timings = audit_one(folder, options, want_timings)
        if rec is not None:
            try:
                cap_record(rec, caps)
            except Exception as exc:
                rec, err = None, f"audit failed while capping the report: {type(exc).__name__}: {exc}"
        try:
            conn.send_bytes(_answer(index, rec, err, timings))
        except (EOFError, OSError, BrokenPipeError):
            return
        except Exception as exc:  # a result that does not pickle: say so, keep serving
            conn.send((index, None, f"audit failed: result could not be sent ({type(exc).__name__}: {exc})", timings))


def _answer(index, rec, err, timings) -> bytes:
    """The pickled answer, within the cap on what a worker sends back (else a one-line failure)."""
    import pickle

    from auditor.limits import MAX_ANSWER_BYTES

    data = pickle.dumps((index, rec, err, timings), protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) <= MAX_ANSWER_BYTES:
        return data
    why = (f"audit failed: the result is {len(data):,} bytes, over the {MAX_ANSWER_BYTES:,}-byte cap on what a worker "
           "sends back; the folder is not audited, review it by hand")
    return pickle.dumps((index, None, why, timings[:1000]), protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":  # pragma: no cover - never run as a script
    sys.exit("auditor.worker is started by the runner")
