"""A guard that proves an audit never imports, executes or writes into the tree it audits.

Use it around an in-process audit (tests do)::

    with ImportGuard([tree]) as guard:
        audit_paths([tree])
    guard.assert_clean()

While it is active:

* a ``sys.meta_path`` finder, first in line, refuses (``ImportError``) and records any module that
  the normal path finder would load from under a guarded tree (``__init__.py``, ``conftest.py``,
  ``sitecustomize.py``, a helper module beside ``train_gpt.py``);
* an audit hook (PEP 578) refuses and records: executing a code object compiled from a file under
  the tree, loading a shared library from it, opening any file for writing under the tree,
  starting a process, and network connections. Writes elsewhere are recorded (bytecode caches of
  pgolf's own modules excepted) but not refused;
* on exit, ``sys.path`` entries and ``sys.modules`` entries that point into the tree are recorded.

Audit hooks cannot be removed, so one hook is installed per process and does nothing while no
guard is active. The guard is a test and debugging aid; the audit path itself imports nothing
from the tree by construction (``auditor.runner`` keeps the tree off ``sys.path``).
"""
from __future__ import annotations

import importlib.machinery
import os
import sys
import threading
from pathlib import Path
from typing import Iterable

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_SPAWN_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                 "os.forkpty", "pty.spawn", "os.startfile"}
_NET_EVENTS = {"socket.connect", "socket.bind", "socket.sendto", "urllib.Request"}

_active: list["ImportGuard"] = []
_hook_installed = False
_lock = threading.Lock()


class SubmissionCodeBlocked(ImportError):
    """Raised when audited code would be imported or executed."""


class ImportGuard:
    def __init__(self, roots: Iterable[str | os.PathLike], *, allow_writes: Iterable[str | os.PathLike] = (),
                 block_spawn: bool = True):
        self.roots = [Path(os.path.realpath(r)) for r in roots]
        self.allow_writes = [Path(os.path.realpath(p)) for p in allow_writes]
        self.block_spawn = block_spawn
        self.violations: list[str] = []  # refused: import / exec / write inside the tree / spawn / network
        self.writes: list[str] = []  # files opened for writing outside the tree (recorded, not refused)
        self._finder = _TreeFinder(self)

    # -- context manager -------------------------------------------------------------------------
    def __enter__(self) -> "ImportGuard":
        _install_hook()
        self._modules_before = set(sys.modules)
        sys.meta_path.insert(0, self._finder)
        with _lock:
            _active.append(self)
        return self

    def __exit__(self, *exc) -> None:
        with _lock:
            if self in _active:
                _active.remove(self)
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        for entry in sys.path:
            if self.inside(entry or "."):
                self.violations.append(f"sys.path holds {entry!r}, inside the audited tree")
        for name, mod in list(sys.modules.items()):
            f = getattr(mod, "__file__", None)
            if f and self.inside(f):
                self.violations.append(f"module {name} was loaded from {f}")

    # -- checks ------------------------------------------------------------------------------------
    def inside(self, path) -> bool:
        try:
            p = Path(os.path.realpath(os.fsdecode(path)))
        except (TypeError, ValueError, OSError):
            return False
        return any(p == r or r in p.parents for r in self.roots)

    def assert_clean(self) -> None:
        assert not self.violations, "audit touched the audited tree:\n  " + "\n  ".join(self.violations)

    def _event(self, event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            if not isinstance(path, (str, bytes, os.PathLike)):
                return
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS)
            if not writing:
                return
            if self.inside(path):
                self._refuse(f"opened {os.fsdecode(path)} for writing", PermissionError)
            name = os.fsdecode(path)
            if "__pycache__" in Path(name).parts or any(self._under(name, a) for a in self.allow_writes):
                return
            self.writes.append(name)
        elif event == "exec":
            code = args[0] if args else None
            fname = getattr(code, "co_filename", None)
            if fname and self.inside(fname):
                self._refuse(f"executed code from {fname}")
        elif event == "ctypes.dlopen":
            if args and args[0] and self.inside(args[0]):
                self._refuse(f"loaded the shared library {args[0]}")
        elif event in _SPAWN_EVENTS and self.block_spawn:
            self._refuse(f"started a process ({event}: {str(args[:2])[:200]})", PermissionError)
        elif event in _NET_EVENTS:
            self._refuse(f"used the network ({event})", PermissionError)

    @staticmethod
    def _under(path: str, top: Path) -> bool:
        try:
            p = Path(os.path.realpath(path))
        except (ValueError, OSError):
            return False
        return p == top or top in p.parents

    def _refuse(self, what: str, exc: type[Exception] = SubmissionCodeBlocked) -> None:
        self.violations.append(what)
        raise exc(f"pgolf safety guard: {what}")


class _TreeFinder:
    """First finder on sys.meta_path: refuses modules that would come from a guarded tree."""

    def __init__(self, guard: ImportGuard):
        self.guard = guard

    def find_spec(self, fullname, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None:
            return None
        where = [spec.origin] if spec.origin and spec.has_location else []
        where += list(spec.submodule_search_locations or [])
        for w in where:
            if w and self.guard.inside(w):
                self.guard.violations.append(f"import of {fullname} from {w}")
                raise SubmissionCodeBlocked(f"pgolf safety guard: refused to import {fullname} from the audited tree ({w})")
        return None  # let the normal finders load it

    def invalidate_caches(self) -> None:
        pass


def _install_hook() -> None:
    global _hook_installed
    with _lock:
        if _hook_installed:
            return
        sys.addaudithook(_hook)
        _hook_installed = True


_in_hook = threading.local()


def _hook(event: str, args: tuple) -> None:
    if not _active or getattr(_in_hook, "busy", False):
        return
    _in_hook.busy = True  # the checks themselves call os.path.realpath, which raises events
    try:
        for guard in list(_active):
            guard._event(event, args)
    finally:
        _in_hook.busy = False
