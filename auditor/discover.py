"""Find the record folders behind the paths a user gives. No parsing here.

A path may be one record folder, a ``records/`` tree, or a checkout of the challenge repository.
Real trees are messy (records.md §1.4): spaces in names, ``records/records/`` nesting, folders
directly under ``records/``, made-up track names, loose files, ``logs/`` sub-folders.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from auditor.fs import is_inside, safe_walk
from auditor.model import Problem, relpath

CANONICAL_TRACKS = {"track_10min_16mb": "10min", "track_non_record_16mb": "non_record"}
CONTAINER_NAMES = {"records", "non_record", "non-record", "phase3", "private_research"}
LOG_SUFFIXES = (".log", ".out")
MAX_FILES_PER_FOLDER = 2000


@dataclass
class RecordFolder:
    path: Path  # absolute
    display: str  # what reports show
    root: Path  # the audited tree: nothing outside it is read
    track: str | None = None  # "10min" | "non_record" | None
    files: list[str] = field(default_factory=list)  # relative posix paths, symlinks excluded
    symlinks: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass
class Discovery:
    folders: list[RecordFolder] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


_LOGISH_TXT = re.compile(r"(log|train|seed|run|eval|out)", re.I)


def is_marker(name: str) -> bool:
    low = name.lower()
    if low == "readme.md" or (low.startswith("submission") and low.endswith(".json")):
        return True
    if low.startswith("train_gpt") and low.endswith(".py"):
        return True
    if low.endswith(LOG_SUFFIXES):
        return True
    return low.endswith(".txt") and low != "requirements.txt" and bool(_LOGISH_TXT.search(low))


def track_of(path: Path) -> str | None:
    for part in path.parts:
        if part in CANONICAL_TRACKS:
            return CANONICAL_TRACKS[part]
    return None


def _is_container(d: Path) -> bool:
    return d.name in CONTAINER_NAMES or d.name.startswith("track_")


def _display(p: Path, cwd: Path) -> str:
    return relpath(p, cwd)


def _list_files(folder: Path, root: Path) -> tuple[list[str], list[str]]:
    files: list[str] = []
    links: list[str] = []
    for d, dirnames, filenames in safe_walk(folder, max_depth=6):
        for n in list(dirnames):
            if (d / n).is_symlink():
                links.append(relpath(d / n, folder))
        for n in filenames:
            p = d / n
            rel = relpath(p, folder)
            if p.is_symlink():
                links.append(rel)
                if not is_inside(p, root):
                    continue
            files.append(rel)
            if len(files) >= MAX_FILES_PER_FOLDER:
                return files, links
    return files, links


def _make_folder(d: Path, root: Path, cwd: Path) -> RecordFolder:
    files, links = _list_files(d, root)
    rf = RecordFolder(path=d, display=_display(d, cwd), root=root, track=track_of(d), files=files, symlinks=links)
    return rf


def _direct_markers(d: Path) -> bool:
    try:
        for child in d.iterdir():
            if child.is_file() and not child.is_symlink() and is_marker(child.name):
                return True
            if child.is_dir() and child.name == "logs" and not child.is_symlink():
                if any(is_marker(c.name) for c in child.iterdir() if c.is_file()):
                    return True
    except OSError:
        return False
    return False


def _search_tree(top: Path, root: Path, cwd: Path, out: Discovery, depth: int = 0) -> None:
    """Collect record folders under ``top`` (a records tree or a container)."""
    if depth > 8:
        return
    try:
        children = sorted(top.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        out.problems.append(Problem(_display(top, cwd), f"cannot list folder ({exc.strerror or exc})"))
        return
    for child in children:
        if child.is_symlink():
            if child.is_dir():
                out.problems.append(Problem(_display(child, cwd), "symlinked folder; not followed"))
            continue
        if child.is_file():
            if _is_container(top) and top.name == "records":
                out.problems.append(Problem(_display(child, cwd), "file loose in records/, outside any record folder"))
            continue
        if not child.is_dir() or child.name.startswith("."):
            continue
        if _is_container(child) and not _direct_markers(child):
            _search_tree(child, root, cwd, out, depth + 1)
        elif _direct_markers(child):
            out.folders.append(_make_folder(child, root, cwd))
        else:
            _search_tree(child, root, cwd, out, depth + 1)


def discover(paths: list[str | Path], cwd: Path | None = None) -> Discovery:
    cwd = (cwd or Path.cwd()).resolve()
    out = Discovery()
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        ap = (cwd / p) if not p.is_absolute() else p
        if not ap.exists():
            out.problems.append(Problem(str(raw), "no such file or folder"))
            continue
        if ap.is_file():
            out.problems.append(Problem(str(raw), "is a file; give the record folder that holds it"))
            continue
        ap = Path(ap.absolute())
        root = ap
        found = Discovery()
        if (ap / "records").is_dir():  # a checkout of the challenge repository
            _search_tree(ap / "records", root, cwd, found)
        elif _is_container(ap) and not _direct_markers(ap):
            _search_tree(ap, root, cwd, found)
        elif _direct_markers(ap):
            found.folders.append(_make_folder(ap, root, cwd))
        else:
            _search_tree(ap, root, cwd, found)
        if not found.folders and not found.problems:
            found.problems.append(Problem(str(raw), "no record folder found (no README.md, submission.json, train_gpt.py or log)"))
        for f in found.folders:
            key = f.path.resolve()
            if key not in seen:
                seen.add(key)
                out.folders.append(f)
        out.problems.extend(found.problems)
    return out


def changed_folders(paths: list[str | Path], base: str, cwd: Path | None = None) -> tuple[Discovery, list[str]]:
    """Record folders under ``paths`` that hold a file added or changed since ``base``.

    Returns the discovery and the changed paths (relative to the git top level).
    """
    cwd = (cwd or Path.cwd()).resolve()
    out = Discovery()
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True, check=True, timeout=60).stdout.strip()
        proc = subprocess.run(
            ["git", "diff", "--name-only", "--no-renames", "-z", f"{base}...HEAD"],
            cwd=cwd, capture_output=True, text=True, timeout=120,
        )
        if proc.returncode != 0:
            proc = subprocess.run(["git", "diff", "--name-only", "--no-renames", "-z", base], cwd=cwd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            out.problems.append(Problem(str(cwd), f"git diff against {base!r} failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'unknown error'}"))
            return out, []
        untracked = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=cwd, capture_output=True, text=True, timeout=120).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        out.problems.append(Problem(str(cwd), f"--changed needs a git checkout: {exc}"))
        return out, []
    changed = [c for c in (proc.stdout + untracked).split("\0") if c]
    topp = Path(top)
    changed_abs = [(topp / c) for c in changed]
    full = discover(paths or [topp], cwd=cwd)
    out.problems.extend(full.problems)
    for f in full.folders:
        fp = f.path.resolve()
        if any(fp == c.resolve().parent or fp in c.resolve().parents for c in changed_abs):
            out.folders.append(f)
    return out, changed
