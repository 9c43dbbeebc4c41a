"""Record folders read straight from git objects: no checkout, no file written.

``pgolf audit REPO --ref 'refs/pull/*/head'`` and ``pgolf leaderboard REPO --ref …`` read the record
folders a ref holds from the object store: trees with ``git cat-file --batch``, blob sizes with
``--batch-check`` (one long-lived process each per worker, not one per file). The folders a pull
request adds or changes are found by diffing the ref against its merge base with the base branch,
so a PR's tree inherits none of main's old folders; the base branch itself is read whole.

Each folder is a :class:`GitRecordFolder` (a ``RecordFolder`` the rest of the pipeline cannot tell
apart): its files sit under a path that does not exist on disk, ``/.pgolf-git/<tree id>``, mounted
in ``auditor.fs``, so every reader goes through the same caps (50 MB per file, 64 MB decoded) and
symlinks are listed, never followed (a git symlink is a blob holding a path: nothing to follow).

The repository may be hostile (a fork's clone): git runs with no system or global configuration,
with fsmonitor and hooks switched off on the command line (which wins over the repository's own
config), and every ref or revision given by a user passes ``--end-of-options``.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from auditor import fs
from auditor.discover import (CANONICAL_TRACKS, CONTAINER_NAMES, LIST_DEPTH, MAX_FILES_PER_FOLDER, SEARCH_DEPTH,
                              Discovery, RecordFolder, _LOG_CONTENT, _SNIFF_BYTES, is_marker, track_of)
from auditor.model import Problem

GIT_TIMEOUT_S = 300
MOUNT_TOP = "/.pgolf-git"  # never created: paths under it exist only in auditor.fs's mount table
_OVERRIDES = ("-c", "core.fsmonitor=", "-c", "core.hooksPath=/dev/null", "-c", "core.pager=cat",
              "-c", "diff.external=", "-c", "protocol.allow=never",
              # a worker's address space is capped: keep git's pack windows small
              "-c", "core.packedGitWindowSize=64m", "-c", "core.packedGitLimit=512m")
_MODE_TREE, _MODE_LINK, _MODE_GITLINK = "40000", "120000", "160000"
_HEX40 = re.compile(r"^[0-9a-f]{40}(?:[0-9a-f]{24})?$")


class GitError(Exception):
    """One line saying what git could not do."""


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    env.update({"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "HOME": os.devnull,
                "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0", "GIT_NO_REPLACE_OBJECTS": "1",
                "GIT_ATTR_NOSYSTEM": "1", "GIT_NO_LAZY_FETCH": "1"})
    env.setdefault("PATH", os.defpath)
    return env


def git_cmd(gitdir: str, *args: str) -> list[str]:
    return ["git", *_OVERRIDES, f"--git-dir={gitdir}", *args]


def run_git(gitdir: str, *args: str, check: bool = True, input: bytes | None = None) -> bytes:
    try:
        p = subprocess.run(git_cmd(gitdir, *args), env=git_env(), capture_output=True, input=input,
                           timeout=GIT_TIMEOUT_S, stdin=None if input is not None else subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        raise GitError(f"git {args[0]} failed: {exc}") from None
    if check and p.returncode != 0:
        err = p.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {err[-1] if err else f'exit {p.returncode}'}")
    return p.stdout


def find_gitdir(path: str | Path) -> str:
    """The git directory of a bare repository or of a checkout; GitError when it is neither."""
    p = Path(path)
    if not p.is_dir():
        raise GitError(f"{path}: no such folder")
    for cand in (p / ".git", p):
        if cand.is_file() and cand.name == ".git":  # a worktree's "gitdir: …" file
            try:
                line = cand.read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                continue
            if line.startswith("gitdir:"):
                cand = (p / line[7:].strip()).resolve()
        if (cand / "objects").is_dir() and (cand / "HEAD").is_file():
            return str(cand.resolve())
    raise GitError(f"{path}: not a git repository or checkout (no objects/ and HEAD)")


# --- object store access: long-lived cat-file processes --------------------------------------------

class _Batch:
    """One ``git cat-file --batch`` (or ``--batch-check``) process, answering one object at a time."""

    def __init__(self, gitdir: str, check: bool):
        self.proc = subprocess.Popen(git_cmd(gitdir, "cat-file", "--batch-check" if check else "--batch"),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=git_env())
        self.lock = threading.Lock()

    def header(self, oid: str) -> tuple[str, int]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(oid.encode("ascii") + b"\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise GitError("git cat-file ended unexpectedly")
        parts = line.split()
        if len(parts) < 3 or parts[-1] == b"missing":
            raise GitError(f"object {oid} is missing from the repository")
        return parts[1].decode("ascii"), int(parts[2])

    def size(self, oid: str) -> tuple[str, int]:
        with self.lock:
            return self.header(oid)

    def read(self, oid: str) -> tuple[str, bytes]:
        with self.lock:
            kind, size = self.header(oid)
            assert self.proc.stdout
            data = self.proc.stdout.read(size + 1)[:size]  # the object, then a newline
            if len(data) != size:
                raise GitError(f"object {oid}: short read")
            return kind, data

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(5)
        except (OSError, subprocess.SubprocessError):
            self.proc.kill()


class ObjectStore:
    """Trees, blobs and sizes of one repository, through two cat-file processes of this process."""

    _per_process: dict[tuple[int, str], "ObjectStore"] = {}

    @classmethod
    def of(cls, gitdir: str) -> "ObjectStore":
        key = (os.getpid(), gitdir)  # a forked worker must not share its parent's pipes
        store = cls._per_process.get(key)
        if store is None:
            store = cls._per_process[key] = cls(gitdir)
        return store

    def __init__(self, gitdir: str):
        self.gitdir = gitdir
        self._batch: _Batch | None = None
        self._check: _Batch | None = None
        self._trees: dict[str, list[tuple[str, str, str]]] = {}

    def _b(self) -> _Batch:
        if self._batch is None:
            self._batch = _Batch(self.gitdir, check=False)
        return self._batch

    def _c(self) -> _Batch:
        if self._check is None:
            self._check = _Batch(self.gitdir, check=True)
        return self._check

    def tree(self, oid: str) -> list[tuple[str, str, str]]:
        """Entries of a tree object as (mode, name, oid), in git's order."""
        hit = self._trees.get(oid)
        if hit is not None:
            return hit
        kind, data = self._b().read(oid)
        if kind != "tree":
            raise GitError(f"object {oid} is a {kind}, not a tree")
        out: list[tuple[str, str, str]] = []
        i, n = 0, len(data)
        while i < n:
            sp = data.index(b" ", i)
            nul = data.index(b"\0", sp)
            mode = data[i:sp].decode("ascii")
            name = data[sp + 1:nul].decode("utf-8", "surrogateescape")
            out.append((mode, name, data[nul + 1:nul + 21].hex()))
            i = nul + 21
        if len(self._trees) > 20000:
            self._trees.clear()
        self._trees[oid] = out
        return out

    def size(self, oid: str) -> int:
        return self._c().size(oid)[1]

    def blob(self, oid: str, max_bytes: int) -> bytes:
        size = self.size(oid)
        if size > max_bytes:  # never pulled into memory
            raise fs.UnreadableFile(f"{size:,} bytes, over the {max_bytes:,}-byte cap; skipped")
        kind, data = self._b().read(oid)
        if kind != "blob":
            raise fs.UnreadableFile("not a regular file")
        return data

    def commit_tree(self, commit: str) -> str:
        kind, data = self._b().read(commit)
        if kind == "tag":  # an annotated tag: follow it to what it names
            m = re.match(rb"object ([0-9a-f]+)", data)
            return self.commit_tree(m.group(1).decode()) if m else ""
        if kind != "commit":
            raise GitError(f"{commit} is a {kind}, not a commit")
        m = re.match(rb"tree ([0-9a-f]+)", data)
        if not m:
            raise GitError(f"commit {commit} has no tree")
        return m.group(1).decode()


# --- the mounted folder ------------------------------------------------------------------------------

@dataclass
class GitTreeSource:
    """The files of one record folder in git: relative path -> (mode, blob id, size). Picklable."""

    gitdir: str
    entries: dict[str, tuple[str, str, int]]

    def check(self, rel: str, max_bytes: int) -> int:
        e = self.entries.get(rel)
        if e is None:
            raise fs.UnreadableFile("no such file in the git tree")
        mode, _oid, size = e
        if mode == _MODE_LINK:
            raise fs.UnreadableFile("symlink in the git tree; not followed")
        if not mode.startswith("100"):
            raise fs.UnreadableFile("not a regular file")
        if size > max_bytes:
            raise fs.UnreadableFile(f"{size:,} bytes, over the {max_bytes:,}-byte cap; skipped")
        return size

    def read(self, rel: str, max_bytes: int) -> bytes:
        self.check(rel, max_bytes)
        try:
            return ObjectStore.of(self.gitdir).blob(self.entries[rel][1], max_bytes)
        except GitError as exc:
            raise fs.UnreadableFile(str(exc)) from None


def mount_root(gitdir: str, tree_oid: str) -> Path:
    tag = hashlib.sha256(gitdir.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return Path(MOUNT_TOP) / tag / tree_oid


@dataclass
class GitRecordFolder(RecordFolder):
    """A record folder read from git. Unpickling it (in an audit worker) mounts its files again."""

    source: GitTreeSource | None = None
    tree_oid: str = ""
    ref: str = ""
    commit: str = ""
    git_path: str = ""  # the folder's path in the repository, e.g. records/track_10min_16mb/…

    def __post_init__(self) -> None:
        self.mount()

    @property
    def name(self) -> str:
        # the mount point is named after the tree id; the date lives in the repository path
        return PurePosixPath(self.git_path).name if self.git_path else self.path.name

    def mount(self) -> None:
        if self.source is not None:
            fs.mount(self.root, self.source)

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.mount()


# --- discovery inside a git tree ------------------------------------------------------------------

class _TreeView:
    """Discovery's questions (listing, markers) asked of git trees instead of folders."""

    def __init__(self, store: ObjectStore):
        self.store = store

    def children(self, oid: str) -> list[tuple[str, str, str]]:
        return self.store.tree(oid)

    def looks_like_log(self, name: str, mode: str, oid: str) -> bool:
        low = name.lower()
        if not low.endswith(".txt") or low == "requirements.txt" or not mode.startswith("100"):
            return False
        try:
            data = self.store.blob(oid, fs.MAX_FILE_BYTES)
        except (fs.UnreadableFile, GitError):
            return False
        return bool(_LOG_CONTENT.search(data[:_SNIFF_BYTES]))

    def direct_markers(self, oid: str) -> bool:
        for mode, name, coid in self.children(oid):
            if mode == _MODE_LINK:
                continue
            if mode.startswith("100") and (is_marker(name) or self.looks_like_log(name, mode, coid)):
                return True
            if mode == _MODE_TREE and name == "logs":
                if any(m.startswith("100") and is_marker(n) for m, n, _ in self.children(coid)):
                    return True
        return False

    def nested_markers(self, oid: str, depth: int = 3) -> bool:
        if depth == 0:
            return False
        for mode, name, coid in self.children(oid):
            if mode.startswith("100") and (is_marker(name) or self.looks_like_log(name, mode, coid)):
                return True
            if mode == _MODE_TREE and not name.startswith(".") and self.nested_markers(coid, depth - 1):
                return True
        return False


_DATED = re.compile(r"^\d{4}[-_]\d{2}[-_]\d{2}")


def _is_container(name: str) -> bool:
    return name in CONTAINER_NAMES or name.startswith("track_")


def list_folder(store: ObjectStore, oid: str) -> tuple[dict[str, tuple[str, str, int]], list[str], list[Problem]]:
    """Every file of a record folder's tree with its size; symlinks and submodules listed apart."""
    entries: dict[str, tuple[str, str, int]] = {}
    links: list[str] = []
    problems: list[Problem] = []

    def walk(toid: str, prefix: str, depth: int) -> bool:
        for mode, name, coid in store.tree(toid):
            rel = prefix + name
            if mode == _MODE_TREE:
                if name.startswith(".git"):
                    continue
                if depth + 1 >= LIST_DEPTH:
                    problems.append(Problem(rel, f"folders nested more than {LIST_DEPTH} levels deep; not listed"))
                    continue
                if not walk(coid, rel + "/", depth + 1):
                    return False
            elif mode == _MODE_LINK:
                links.append(rel)
                entries[rel] = (mode, coid, 0)  # answered "symlink; not followed" when read
                problems.append(Problem(rel, "symlink in the git tree; not followed"))
            elif mode == _MODE_GITLINK:
                problems.append(Problem(rel, "a submodule (a commit of another repository); not read"))
            else:
                entries[rel] = (mode, coid, -1)
                if len(entries) >= MAX_FILES_PER_FOLDER:
                    problems.append(Problem(".", f"more than {MAX_FILES_PER_FOLDER} files; the rest are not read"))
                    return False
        return True

    walk(oid, "", 0)
    for rel, (mode, boid, _) in list(entries.items()):
        if mode == _MODE_LINK:
            continue
        try:
            entries[rel] = (mode, boid, store.size(boid))
        except GitError as exc:
            problems.append(Problem(rel, str(exc)))
            del entries[rel]
    return entries, links, problems


def make_folder(store: ObjectStore, gitdir: str, ref: str, commit: str, path: str, oid: str) -> GitRecordFolder:
    entries, links, problems = list_folder(store, oid)
    root = mount_root(gitdir, oid)
    files = sorted(r for r, e in entries.items() if e[0] != _MODE_LINK)
    return GitRecordFolder(path=root, display=f"{ref}:{path}", root=root, track=track_of(PurePosixPath(path)),
                           files=files, symlinks=links, problems=problems,
                           source=GitTreeSource(gitdir, entries), tree_oid=oid, ref=ref, commit=commit, git_path=path)


@dataclass
class RefFolders:
    """What one ref contributes: its folders (as plain descriptors, cacheable) and problems."""

    ref: str
    commit: str
    base: str | None  # the merge base diffed against; None when the whole tree was read
    folders: list[tuple[str, str]] = field(default_factory=list)  # (path in repo, tree id)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, message)
    changed: int = 0  # files the ref changes since its merge base


def search_tree(view: _TreeView, oid: str, path: str, touched: set[str] | None, out: RefFolders, depth: int = 0) -> None:
    """discover._search_tree over a git tree; with ``touched`` only directories on a changed path
    are entered and only touched folders are kept (the PR case)."""
    if depth > SEARCH_DEPTH:
        out.problems.append((path, f"folders nested more than {SEARCH_DEPTH} levels deep; not searched"))
        return
    here = path.rsplit("/", 1)[-1]
    for mode, name, coid in sorted(view.children(oid), key=lambda e: e[1]):
        cpath = f"{path}/{name}"
        if touched is not None and cpath not in touched:
            continue
        if mode == _MODE_LINK:
            out.problems.append((cpath, "symlink in the git tree; not followed"))
            continue
        if mode != _MODE_TREE:
            if mode.startswith("100") and _is_container(here) and here == "records":
                out.problems.append((cpath, "file loose in records/, outside any record folder"))
            continue
        if name.startswith("."):
            continue
        direct = view.direct_markers(coid)
        if _is_container(name) and not direct:
            search_tree(view, coid, cpath, touched, out, depth + 1)
        elif direct or ((here in CANONICAL_TRACKS or _DATED.match(name)) and view.nested_markers(coid)):
            out.folders.append((cpath, coid))
        else:
            search_tree(view, coid, cpath, touched, out, depth + 1)


def _subtree(store: ObjectStore, root_tree: str, path: str) -> str | None:
    oid = root_tree
    for part in path.split("/"):
        hit = next((c for m, n, c in store.tree(oid) if n == part and m == _MODE_TREE), None)
        if hit is None:
            return None
        oid = hit
    return oid


# --- refs ------------------------------------------------------------------------------------------

_GLOB = re.compile(r"[*?\[]")


def resolve_refs(gitdir: str, patterns: list[str]) -> tuple[list[tuple[str, str]], list[Problem]]:
    """(refname, commit id) for every ref matching the patterns, in order; globs match whole names."""
    problems: list[Problem] = []
    for pat in patterns:
        if not pat or pat.startswith("-") or any(c in pat for c in "\0\n"):
            raise GitError(f"--ref needs a ref name or glob, not {pat!r}")
    raw = run_git(gitdir, "for-each-ref", "--format=%(objectname) %(objecttype) %(refname)").decode("utf-8", "surrogateescape")
    all_refs = []
    for line in raw.splitlines():
        oid, kind, name = line.split(" ", 2)
        all_refs.append((name, oid, kind))
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for pat in patterns:
        if _GLOB.search(pat):
            hits = [(n, o) for n, o, k in all_refs if fnmatch.fnmatchcase(n, pat)]
            hits.sort(key=lambda x: _natural(x[0]))
            if not hits:
                problems.append(Problem(pat, "no ref matches this pattern"))
        else:
            exact = [(n, o) for n, o, k in all_refs if n in (pat, f"refs/heads/{pat}", f"refs/tags/{pat}")]
            if exact:
                hits = exact[:1]
            else:
                got = run_git(gitdir, "rev-parse", "--verify", "--quiet", "--end-of-options", pat + "^{commit}", check=False)
                oid = got.decode().strip()
                if not _HEX40.match(oid):
                    problems.append(Problem(pat, "no such ref or commit in the repository"))
                    continue
                hits = [(pat, oid)]
        for n, o in hits:
            if n not in seen:
                seen.add(n)
                out.append((n, o))
    return out, problems


def _natural(name: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def default_base(gitdir: str) -> str | None:
    for cand in ("refs/heads/main", "refs/heads/master", "refs/remotes/origin/main", "HEAD"):
        got = run_git(gitdir, "rev-parse", "--verify", "--quiet", "--end-of-options", cand + "^{commit}", check=False)
        oid = got.decode().strip()
        if _HEX40.match(oid):
            return cand
    return None


def ref_folders(gitdir: str, ref: str, commit: str, base_commit: str | None) -> RefFolders:
    """The record folders of one ref: the whole records tree when the ref is the base (or no base
    is known), else the folders holding a file the ref adds or changes since its merge base."""
    store = ObjectStore.of(gitdir)
    view = _TreeView(store)
    out = RefFolders(ref=ref, commit=commit, base=None)
    try:
        root_tree = store.commit_tree(commit)
    except GitError as exc:
        out.problems.append((ref, str(exc)))
        return out
    touched: set[str] | None = None
    if base_commit and base_commit != commit:
        mb = run_git(gitdir, "merge-base", "--end-of-options", base_commit, commit, check=False).decode().strip()
        if not _HEX40.match(mb):
            out.problems.append((ref, "no merge base with the base branch (unrelated history); its whole records tree is read"))
        else:
            if mb == commit:  # merged with a merge commit: diff against main as it was before that merge
                mb = _fork_point(gitdir, commit, base_commit)
                if mb is None:
                    out.problems.append((ref, "already contained in the base branch and its fork point cannot be told; "
                                              "it adds no record folder of its own"))
                    return out
            out.base = mb
            names = run_git(gitdir, "diff-tree", "-r", "-z", "--name-only", "--no-renames", "--no-ext-diff",
                            "--no-textconv", mb, commit).decode("utf-8", "surrogateescape")
            changed = [c for c in names.split("\0") if c]
            out.changed = len(changed)
            touched = set()
            for c in changed:
                parts = c.split("/")
                for i in range(1, len(parts) + 1):
                    touched.add("/".join(parts[:i]))
            if not any(c.startswith("records/") for c in changed):
                out.problems.append((ref, f"changes {len(changed)} file(s), none under records/; no record folder to audit"))
                return out
    records = _subtree(store, root_tree, "records")
    if records is None:
        out.problems.append((ref, "no records/ folder in this tree"))
        return out
    search_tree(view, records, "records", touched, out)
    if touched is not None and not out.folders and not out.problems:
        out.problems.append((ref, "changes files under records/ but no record folder (no README.md, submission.json, "
                                  "train_gpt.py or log)"))
    return out


def _fork_point(gitdir: str, commit: str, base_commit: str) -> str | None:
    """Where a ref the base branch already contains left it: the merge base of the ref with the
    base branch's first parent just before the merge that brought it in (for a fast-forward, the
    ref's own parent)."""
    got = run_git(gitdir, "rev-list", "--first-parent", "--ancestry-path", "--reverse", f"{commit}..{base_commit}",
                  check=False).decode().split()
    if not got:
        return None
    parents = run_git(gitdir, "rev-parse", "--verify", "--quiet", f"{got[0]}^1", check=False).decode().strip()
    if not _HEX40.match(parents):
        return None
    if parents != commit:
        mb = run_git(gitdir, "merge-base", parents, commit, check=False).decode().strip()
        if _HEX40.match(mb) and mb != commit:
            return mb
    own = run_git(gitdir, "rev-parse", "--verify", "--quiet", f"{commit}^1", check=False).decode().strip()
    return own if _HEX40.match(own) else None


def build_folders(gitdir: str, rf: RefFolders) -> tuple[list[GitRecordFolder], list[Problem]]:
    store = ObjectStore.of(gitdir)
    folders = []
    problems = [Problem(f, m) for f, m in rf.problems]
    for path, oid in rf.folders:
        try:
            folders.append(make_folder(store, gitdir, rf.ref, rf.commit, path, oid))
        except GitError as exc:
            problems.append(Problem(f"{rf.ref}:{path}", str(exc)))
    return folders, problems


def discover_refs(gitdir: str, patterns: list[str], base: str | None = None,
                  ref_cache: dict | None = None) -> tuple[Discovery, list[RefFolders]]:
    """Every record folder the refs hold (see :func:`ref_folders`), in ref order.

    ``ref_cache`` maps ``"<commit>:<base commit>"`` to a ref's folder list: commits are immutable,
    so a ref seen before needs no merge base and no diff."""
    out = Discovery()
    refs, problems = resolve_refs(gitdir, patterns)
    out.problems.extend(problems)
    base = base or default_base(gitdir)
    base_commit = None
    if base:
        got = run_git(gitdir, "rev-parse", "--verify", "--quiet", "--end-of-options", base + "^{commit}", check=False)
        base_commit = got.decode().strip() or None
        if base_commit is None:
            raise GitError(f"--base {base!r}: no such ref or commit")
    per_ref: list[RefFolders] = []
    for name, commit in refs:
        key = f"{commit}:{base_commit}"
        rf = None
        if ref_cache is not None and key in ref_cache:
            rf = _rf_from_json(name, ref_cache[key])
        if rf is None:
            rf = ref_folders(gitdir, name, _peel(gitdir, commit), base_commit)
            if ref_cache is not None:
                ref_cache[key] = _rf_to_json(rf)
        per_ref.append(rf)
    return out, per_ref


def _peel(gitdir: str, oid: str) -> str:
    kind, _ = ObjectStore.of(gitdir)._c().size(oid)
    if kind == "commit":
        return oid
    got = run_git(gitdir, "rev-parse", "--verify", "--quiet", f"{oid}^{{commit}}", check=False).decode().strip()
    return got or oid


def _rf_to_json(rf: RefFolders) -> dict:
    return {"commit": rf.commit, "base": rf.base, "folders": rf.folders, "problems": rf.problems, "changed": rf.changed}


def _rf_from_json(ref: str, d: dict) -> RefFolders | None:
    try:
        return RefFolders(ref=ref, commit=d["commit"], base=d["base"], folders=[tuple(x) for x in d["folders"]],
                          problems=[tuple(x) for x in d["problems"]], changed=int(d.get("changed", 0)))
    except (KeyError, TypeError, ValueError):
        return None


def is_git_source(path: str | Path) -> bool:
    try:
        find_gitdir(path)
        return True
    except GitError:
        return False


# --- cached audits of refs ----------------------------------------------------------------------
#
# A folder's audit depends on its tree (content, addressed by the tree id), pgolf's own code and the
# options: the cache key is all three, so an edited rule or another rulebook never serves a stale
# result. A ref's folder list depends on its commit and the base commit (both immutable).

def cache_dir(given: str | Path | None = None) -> Path:
    if given:
        return Path(given)
    if os.environ.get("PGOLF_CACHE_DIR"):
        return Path(os.environ["PGOLF_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pgolf"


_FINGERPRINT: str | None = None


# Sources that never change a folder's RecordResult (commands, renderers, the re-run harness, the
# leaderboard built from results): editing them keeps the cache.
_OUTSIDE_AUDIT = ("cli", "report/", "reproduce/", "leaderboard.py", "plot.py", "ruledocs.py", "ci_action.py", "precommit.py")


def _not_in_audit(rel: str) -> bool:
    return rel.startswith(_OUTSIDE_AUDIT)


def code_fingerprint() -> str:
    """A hash of the sources an audit runs (auditor/, rules/): a changed rule invalidates the cache."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        import auditor
        from auditor.pipeline import rules_dir  # the one rule loader

        h = hashlib.sha256(auditor.__version__.encode())
        for pkg in (Path(auditor.__file__).parent, rules_dir()):
            for p in sorted(pkg.rglob("*.py")):
                if _not_in_audit(p.relative_to(pkg).as_posix()):
                    continue
                try:
                    h.update(p.relative_to(pkg.parent).as_posix().encode() + b"\0" + p.read_bytes())
                except OSError:
                    pass
        _FINGERPRINT = h.hexdigest()
    return _FINGERPRINT


def options_key(options) -> str:
    waiver = ""
    if getattr(options, "waivers_file", None):
        try:
            waiver = hashlib.sha256(Path(options.waivers_file).read_bytes()).hexdigest()
        except OSError:
            waiver = "unreadable"
    parts = [options.rulebook, ",".join(sorted(options.only_rules or [])), "|".join(options.against), waiver]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class ResultCache:
    """Pickled RecordResults under ``<dir>/results``, keyed by tree id + code + options."""

    def __init__(self, root: Path, options):
        self.root = root
        self.salt = code_fingerprint() + options_key(options)
        self.enabled = True
        try:
            (root / "results").mkdir(parents=True, exist_ok=True)
        except OSError:
            self.enabled = False

    def _path(self, tree_oid: str) -> Path:
        key = hashlib.sha256((tree_oid + self.salt).encode()).hexdigest()
        return self.root / "results" / key[:2] / f"{key}.pickle"

    def get(self, tree_oid: str, display: str):
        import pickle

        if not self.enabled:
            return None
        try:
            with open(self._path(tree_oid), "rb") as fh:
                old_display, rec = pickle.load(fh)
        except Exception:  # missing, truncated or from another Python: recompute
            return None
        _redisplay(rec, old_display, display)
        return rec

    def put(self, tree_oid: str, display: str, rec) -> None:
        import pickle

        if not self.enabled:
            return
        p = self._path(tree_oid)
        try:
            p.parent.mkdir(exist_ok=True)
            tmp = p.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                pickle.dump((display, rec), fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, p)
        except OSError:
            pass

    def load_refs(self, gitdir: str) -> dict:
        import json

        try:
            return json.loads(self._refs_path(gitdir).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def save_refs(self, gitdir: str, data: dict) -> None:
        import json

        if not self.enabled:
            return
        p = self._refs_path(gitdir)
        try:
            p.parent.mkdir(exist_ok=True)
            tmp = p.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, p)
        except OSError:
            pass

    def _refs_path(self, gitdir: str) -> Path:
        # keyed by the repository and by the discovery code: a changed search rule re-reads every ref
        h = hashlib.sha256(gitdir.encode("utf-8", "surrogateescape"))
        for mod in (__file__, _discover_file()):
            try:
                h.update(Path(mod).read_bytes())
            except OSError:
                pass
        return self.root / "refs" / (h.hexdigest()[:24] + ".json")


def _discover_file() -> str:
    import auditor.discover

    return auditor.discover.__file__


def _redisplay(rec, old: str, new: str) -> None:
    if old == new:
        return
    rec.path = new
    for p in rec.errors:
        if p.file == old:
            p.file = new
        p.message = p.message.replace(old, new)


@dataclass
class RefAudit:
    report: object  # auditor.model.Report, records in ref order
    folders: list[GitRecordFolder | tuple[str, str, str, str]]  # per record: the folder or (ref, commit, path, tree)
    per_ref: list[RefFolders]
    cached: int = 0
    audited: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0


CHUNK = 128  # folders per worker-pool run between cache writes


def audit_refs(gitdir: str, patterns: list[str], options, *, base: str | None = None, jobs: int = 1,
               timeout_s: float | None = None, cache: str | Path | None = None, use_cache: bool = True,
               progress=None) -> RefAudit:
    """Audit the record folders of every ref (see :func:`discover_refs`), reusing cached results."""
    import time

    from auditor import runner
    from auditor.model import Report
    from auditor.pipeline import tool_info

    t0 = time.perf_counter()
    rc = ResultCache(cache_dir(cache), options) if use_cache else None
    ref_map = rc.load_refs(gitdir) if rc else None
    before = len(ref_map) if ref_map is not None else 0
    disc, per_ref = discover_refs(gitdir, patterns, base, ref_map)
    if rc and ref_map is not None and len(ref_map) != before:
        rc.save_refs(gitdir, ref_map)
    report = Report(tool=tool_info(), errors=list(disc.problems), root=str(Path.cwd()))
    slots: list = []  # per folder: a cached RecordResult or the index into `todo`
    descs: list[tuple[str, str, str, str]] = []
    todo: list[GitRecordFolder] = []
    store = ObjectStore.of(gitdir)
    first: dict[str, int] = {}  # tree id -> index in todo: a folder several PRs share is audited once
    for rf in per_ref:
        report.errors.extend(Problem(f, m) for f, m in rf.problems)
        for path, oid in rf.folders:
            display = f"{rf.ref}:{path}"
            descs.append((rf.ref, rf.commit, path, oid))
            hit = rc.get(oid, display) if rc else None
            if hit is not None:
                slots.append(hit)
                continue
            if oid in first:
                slots.append(("same", first[oid], display))
                continue
            try:
                todo.append(make_folder(store, gitdir, rf.ref, rf.commit, path, oid))
                first[oid] = len(todo) - 1
                slots.append(len(todo) - 1)
            except GitError as exc:
                report.errors.append(Problem(display, str(exc)))
                slots.append(None)
    out = RefAudit(report=report, folders=list(descs), per_ref=per_ref)
    out.cached = sum(1 for s in slots if s is not None and not isinstance(s, (int, tuple)))
    results: list = []
    if todo:
        # in chunks, each cached as it ends: a long cold run that is stopped keeps what it did
        for lo in range(0, len(todo), CHUNK):
            part = todo[lo:lo + CHUNK]

            def step(done: int, n: int, label: str, lo=lo) -> None:
                if progress:
                    progress(lo + done, len(todo), label)

            run = runner.run_isolated(Discovery(folders=part), options, jobs=jobs, timeout_s=timeout_s, progress=step)
            out.failed.extend(run.failed)
            failed = set(run.failed)
            for f, rec in zip(part, run.report.records):
                if rc and rec.path == f.display and rec.path not in failed:
                    rc.put(f.tree_oid, f.display, rec)
            results.extend(run.report.records)
        out.audited = len(todo)
    recs = []
    folders_out: list = []
    for desc, s in zip(descs, slots):
        if s is None:
            continue
        if isinstance(s, tuple):  # the same tree under another ref: a copy under this name
            import copy

            rec = copy.deepcopy(results[s[1]])
            _redisplay(rec, todo[s[1]].display, s[2])
        else:
            rec = results[s] if isinstance(s, int) else s
        recs.append(rec)
        folders_out.append(todo[s] if isinstance(s, int) else desc)
    report.records = recs
    out.folders = folders_out
    out.seconds = time.perf_counter() - t0
    return out
