"""Find the record folders behind the paths a user gives. No parsing here.

A path may be one record folder, a ``records/`` tree, or a checkout of the challenge repository.
Real trees are messy (records.md §1.4): spaces in names, ``records/records/`` nesting, folders
directly under ``records/``, made-up track names, loose files, ``logs/`` sub-folders.
"""
from __future__ import annotations

import os
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
LIST_DEPTH = 6  # folder levels listed inside one record folder
SEARCH_DEPTH = 8  # container levels searched for record folders


@dataclass
class RecordFolder:
    path: Path  # absolute
    display: str  # what reports show
    root: Path  # the audited tree: nothing outside it is read
    track: str | None = None  # "10min" | "non_record" | None
    files: list[str] = field(default_factory=list)  # relative posix paths, symlinks excluded
    symlinks: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The folder's own name (``2026-03-17_NaiveBaseline``), which dates it."""
        return self.path.name


@dataclass
class Discovery:
    folders: list[RecordFolder] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    # ``--changed BASE``: the base the folders changed since (waivers then come from its revision)
    changed_since: str | None = None
    changed_cwd: Path | None = None


_LOGISH_TXT = re.compile(r"(log|train|seed|run|eval|out)", re.I)
# .txt files whose names say nothing (byte_jepa_896d14l_2000.txt) are logs when their text looks like one
_LOG_CONTENT = re.compile(rb"val_bpb|val_loss|train_loss|step:\d+/\d+|stopping_early")
_SNIFF_BYTES = 65536


def looks_like_log(path: Path) -> bool:
    """A .txt file (not requirements.txt) whose first 64 KB read like a train log."""
    low = path.name.lower()
    if not low.endswith(".txt") or low == "requirements.txt":
        return False
    from auditor import fs

    if fs.mounted(path) is not None:  # a folder read from git objects (auditor.gitsource)
        try:
            return bool(_LOG_CONTENT.search(fs.read_bytes(path, path.parent)[:_SNIFF_BYTES]))
        except fs.UnreadableFile:
            return False
    try:
        if path.is_symlink() or not path.is_file():
            return False
        with open(path, "rb") as fh:
            return bool(_LOG_CONTENT.search(fh.read(_SNIFF_BYTES)))
    except OSError:
        return False


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


def _list_files(folder: Path, root: Path, problems: list[Problem] | None = None) -> tuple[list[str], list[str]]:
    """Relative paths of the folder's files. Symlinks that leave the tree and symlinked folders
    are listed in ``links`` and reported in ``problems``, never followed."""
    files: list[str] = []
    links: list[str] = []
    problems = problems if problems is not None else []
    for d, dirnames, filenames in safe_walk(folder, max_depth=LIST_DEPTH):
        if len(d.parts) - len(folder.parts) >= LIST_DEPTH and _has_subfolder(d):
            problems.append(Problem(relpath(d, folder), f"folders nested more than {LIST_DEPTH} levels deep; not listed"))
        for n in list(dirnames):
            if _lexists_link(d / n):
                rel = relpath(d / n, folder)
                links.append(rel)
                problems.append(Problem(rel, "symlinked folder; not followed"))
        for n in filenames:
            p = d / n
            rel = relpath(p, folder)
            if _lexists_link(p):
                links.append(rel)
                if not is_inside(p, root):
                    problems.append(Problem(rel, "symlink pointing outside the audited folder; not followed"))
                    continue
            files.append(rel)
            if len(files) >= MAX_FILES_PER_FOLDER:
                problems.append(Problem(".", f"more than {MAX_FILES_PER_FOLDER} files; the rest are not read"))
                return files, links
    return files, links


def _has_subfolder(d: Path) -> bool:
    try:
        with os.scandir(d) as it:
            return any(e.is_dir(follow_symlinks=False) for e in it)
    except OSError:
        return False


def _lexists_link(p: Path) -> bool:
    try:
        return p.is_symlink()
    except (OSError, ValueError):
        return False


def _make_folder(d: Path, root: Path, cwd: Path) -> RecordFolder:
    problems: list[Problem] = []
    files, links = _list_files(d, root, problems)
    rf = RecordFolder(path=d, display=_display(d, cwd), root=root, track=track_of(d), files=files, symlinks=links,
                      problems=problems)
    return rf


def _direct_markers(d: Path) -> bool:
    try:
        for child in d.iterdir():
            if child.is_symlink():
                continue
            if child.is_file() and (is_marker(child.name) or looks_like_log(child)):
                return True
            if child.is_dir() and child.name == "logs":
                if any(is_marker(c.name) for c in child.iterdir() if c.is_file() and not c.is_symlink()):
                    return True
    except (OSError, ValueError):
        return False
    return False


def _search_tree(top: Path, root: Path, cwd: Path, out: Discovery, depth: int = 0) -> None:
    """Collect record folders under ``top`` (a records tree or a container)."""
    if depth > SEARCH_DEPTH:
        out.problems.append(Problem(_display(top, cwd), f"folders nested more than {SEARCH_DEPTH} levels deep; not searched"))
        return
    try:
        children = sorted(top.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        out.problems.append(Problem(_display(top, cwd), f"cannot list folder ({exc.strerror or exc})"))
        return
    for child in children:
        try:
            if child.is_symlink():
                if child.is_dir() or not child.exists():
                    out.problems.append(Problem(_display(child, cwd), "symlinked folder; not followed"))
                continue
            if child.is_file():
                if _is_container(top) and top.name == "records":
                    out.problems.append(Problem(_display(child, cwd), "file loose in records/, outside any record folder"))
                continue
            if not child.is_dir() or child.name.startswith("."):
                continue
        except (OSError, ValueError) as exc:  # e.g. a folder without search permission
            out.problems.append(Problem(_display(child, cwd), f"cannot read ({getattr(exc, 'strerror', None) or exc})"))
            continue
        if _is_container(child) and not _direct_markers(child):
            _search_tree(child, root, cwd, out, depth + 1)
        elif _direct_markers(child) or (_is_record_name(child, top) and _nested_markers(child)):
            out.folders.append(_make_folder(child, root, cwd))
        else:
            _search_tree(child, root, cwd, out, depth + 1)


_DATED = re.compile(r"^\d{4}[-_]\d{2}[-_]\d{2}")


def _is_record_name(d: Path, parent: Path) -> bool:
    """A folder directly in a track directory, or named like one (YYYY-MM-DD_…), is a record folder
    even when its files sit in sub-folders (``logs/``, ``wandb/``): its sub-folders belong to it."""
    return parent.name in CANONICAL_TRACKS or bool(_DATED.match(d.name))


def _nested_markers(d: Path, depth: int = 3) -> bool:
    if depth == 0:
        return False
    try:
        for child in d.iterdir():
            if child.is_symlink():
                continue
            if child.is_file() and (is_marker(child.name) or looks_like_log(child)):
                return True
            if child.is_dir() and not child.name.startswith(".") and _nested_markers(child, depth - 1):
                return True
    except (OSError, ValueError):
        return False
    return False


def discover(paths: list[str | Path], cwd: Path | None = None) -> Discovery:
    cwd = (cwd or Path.cwd()).resolve()
    out = Discovery()
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        ap = (cwd / p) if not p.is_absolute() else p
        try:
            exists, is_file = ap.exists(), ap.is_file()
        except (OSError, ValueError) as exc:  # a name too long, a NUL byte, no permission
            out.problems.append(Problem(str(raw), f"cannot open ({getattr(exc, 'strerror', None) or exc})"))
            continue
        if not exists:
            out.problems.append(Problem(str(raw), "no such file or folder"))
            continue
        if is_file:
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


# --- git, run on a checkout that may come from the audited material --------------------------------
#
# A checkout (a tarball that ships .git/, a fork's clone) can carry a .git/config whose settings run
# programs: core.fsmonitor on every index refresh, textconv/external diff drivers, filters, aliases.
# git runs here with no system or global config, those hooks switched off on the command line (which
# wins over every file), and a repository-local config that names a program at all is refused.
_GIT_OVERRIDES = ("-c", "core.fsmonitor=", "-c", "core.hooksPath=/dev/null", "-c", "safe.directory=*",
                  "-c", "core.pager=cat", "-c", "diff.external=", "-c", "core.untrackedCache=false",
                  "-c", "protocol.allow=never")
_GIT_PROGRAM_KEY = re.compile(
    r"^(?:core\.(?:fsmonitor|pager|editor|sshcommand|askpass|gitproxy|hookspath|alternaterefscommand)"
    r"|sequence\.editor|diff\.external|diff\.tool|merge\.tool|credential\.helper|gpg\.program|uploadpack\.packobjectshook"
    r"|alias\..+|include\.path|includeif\..+|(?:diff|merge|filter|credential|difftool|mergetool|gpg)\..+"
    r"\.(?:textconv|command|driver|clean|smudge|process|program|helper|cmd|path))$", re.I)
_GIT_FALSE = {"", "false", "no", "off", "0"}
GIT_TIMEOUT_S = 120


def git_env() -> dict[str, str]:
    """A neutral environment: nothing of the caller's GIT_* variables, no system or global config."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "HOME": os.devnull,
                "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "GIT_NO_REPLACE_OBJECTS": "1",
                "GIT_ATTR_NOSYSTEM": "1"})
    env.setdefault("PATH", os.defpath)
    return env


def run_git(args: list[str], cwd: Path | str, text: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *_GIT_OVERRIDES, *args], cwd=str(cwd), env=git_env(), capture_output=True,
                          text=text, timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL)


def risky_git_config(top: Path) -> list[str]:
    """Repository-local settings that name a program git could run (``key=value`` as listed)."""
    r = run_git(["config", "--local", "--null", "--list"], top)
    if r.returncode not in (0, 1):  # 1: no local config at all
        return [f"unreadable local config ({r.stderr.strip()[:120]})"]
    out = []
    for item in r.stdout.split("\0"):
        key, _, value = item.partition("\n")
        if not key or not _GIT_PROGRAM_KEY.match(key):
            continue
        if key.lower() == "core.fsmonitor" and value.strip().lower() in _GIT_FALSE:
            continue
        out.append(f"{key}={value[:60]}")
    return out


def changed_folders(paths: list[str | Path], base: str, cwd: Path | None = None) -> tuple[Discovery, list[str]]:
    """Record folders under ``paths`` that hold a file added or changed since ``base``.

    "Since base" means since the branch left it (its merge base with HEAD), so folders changed on
    the base branch afterwards are not included; uncommitted and untracked files count too (the
    pre-commit and local case). Returns the discovery and the changed paths (relative to the git
    top level).
    """
    cwd = (cwd or Path.cwd()).resolve()
    out = Discovery()
    if not base or base.startswith("-") or any(c in base for c in "\0\n"):
        # a "ref" that git would read as an option (--output=...) is refused, not passed on
        out.problems.append(Problem(str(base), "--changed needs a git ref (a branch, tag or commit), not an option"))
        return out, []

    def git(*args: str, top: str | None = None) -> subprocess.CompletedProcess:
        return run_git(list(args), top or cwd)

    try:
        probe = git("rev-parse", "--show-toplevel")
        if probe.returncode != 0:
            out.problems.append(Problem(str(cwd), "--changed needs a git checkout; this folder is not inside one"))
            return out, []
        top = probe.stdout.strip()
        refused = risky_git_config(Path(top))
        if refused:
            out.problems.append(Problem(str(cwd), "--changed refuses this checkout: its repository-local git config names "
                                                  f"programs git would run ({', '.join(refused[:5])}); remove them or audit "
                                                  "the folders without --changed"))
            return out, []
        mb = git("merge-base", "--end-of-options", base, "HEAD", top=top)
        # No merge base (shallow clone, unrelated history): compare with the ref itself.
        since = mb.stdout.strip() if mb.returncode == 0 and mb.stdout.strip() else base
        proc = git("diff", "--name-only", "--no-renames", "--no-ext-diff", "--no-textconv", "-z", "--end-of-options", since, top=top)
        if proc.returncode != 0:
            err = proc.stderr.strip().splitlines()
            out.problems.append(Problem(str(cwd), f"git diff against {base!r} failed: {err[-1] if err else 'unknown error'}"))
            return out, []
        untracked = git("ls-files", "--others", "--exclude-standard", "-z", top=top).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        out.problems.append(Problem(str(cwd), f"--changed needs a git checkout: {exc}"))
        return out, []
    changed = sorted({c for c in (proc.stdout + untracked).split("\0") if c})
    topp = Path(top).resolve()
    touched_dirs: set[Path] = set()
    for c in changed:
        touched_dirs.update((topp / c).parents)
    full = discover(paths or [topp], cwd=cwd)
    changed_abs = {topp / c for c in changed}
    for p in full.problems:
        # Only problems about what changed: a PR must not inherit the tree's old stray files.
        where = (cwd / p.file).resolve() if p.file else cwd
        if not where.exists() or where in changed_abs or where in touched_dirs:
            out.problems.append(p)
    out.folders = [f for f in full.folders if f.path.resolve() in touched_dirs]
    out.changed_since, out.changed_cwd = base, cwd
    return out, changed
