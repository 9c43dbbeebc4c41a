"""Metamorphic invariance over real folders: N meaning-preserving rewrites of every labelled PR folder
(and of the adversarial suite), each audited in full; the eval-integrity verdict and the families of
its errors must not change.

    python benchmarks/bench_metamorphic.py --prs DIR [--labels labels.tsv] [-n 4] [--seed 0] [--jobs 2]
                                           [--explain] [--no-adversarial] [--only-labels] [--json out.json]

``--prs`` is the extracted PR tree (``<pr>/records/<track>/<folder>``; default $PGOLF_PRS),
``--labels`` the labels TSV (columns pr, folder, verdict, rules; default ../shared/labels/labels.tsv
next to the checkout). Mutant k of a folder applies every transform of tests/metamorphic/rewrite.py
in an order drawn from seed+k; a mutant whose signature differs is a miss (with ``--explain``, each
single transform is then tried alone on the folder's first miss to say which one the engine does not
see through). The signature compares what
the rules conclude from the code: a verdict over the eval, ngram, ttt, slot, data and net rules (fail
on an error, review on a warning, else pass) and the set of those families with an error. Report
and artifact rules are left out on purpose: rewriting the code changes its bytes and makes the
source a log embeds differ, which those rules rightly notice.

Folders are copied to a scratch directory (hard links for everything but rewritten .py files);
nothing in them is executed.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import rules  # noqa: E402
from auditor.context import AuditOptions  # noqa: E402
from auditor.discover import discover  # noqa: E402
from auditor.pipeline import audit_folder  # noqa: E402
from tests.metamorphic.rewrite import TRANSFORMS, mutate  # noqa: E402

FAMILIES = ("eval", "ngram", "ttt", "slot", "data", "net")
MAX_PY_BYTES = 4_000_000  # larger .py files are left as they are


def family_map() -> dict[str, str]:
    return {rid: cls.family for rid, cls in rules.load_all().items()}


def signature(rec, fam: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    live = [f for f in rec.findings if not f.waived and fam.get(f.rule) in FAMILIES]
    errs = sorted({fam[f.rule] for f in live if f.severity.rank >= 3})
    warn = any(f.severity.rank == 2 for f in live)
    return ("fail" if errs else "needs-review" if warn else "pass"), tuple(errs)


def audit(path: Path):
    disc = discover([str(path)])
    if len(disc.folders) != 1:
        return None
    return audit_folder(disc.folders[0], AuditOptions())


def read_py(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*.py")):
        if p.is_symlink() or not p.is_file() or p.stat().st_size > MAX_PY_BYTES:
            continue
        try:
            out[p.relative_to(folder).as_posix()] = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
    return out


def materialize(src: Path, dst: Path, files: dict[str, str], original: dict[str, str]) -> None:
    """dst = src with the rewritten Python files (new helper modules included)."""
    for p in src.rglob("*"):
        rel = p.relative_to(src)
        target = dst / rel
        if p.is_symlink():
            continue  # the audit does not follow links; a copy would only add noise
        if p.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.as_posix() in files and files[rel.as_posix()] != original.get(rel.as_posix()):
            continue
        try:
            os.link(p, target)
        except OSError:
            shutil.copy2(p, target)
    for rel, text in files.items():
        if text != original.get(rel):
            t = dst / rel
            t.parent.mkdir(parents=True, exist_ok=True)
            t.write_text(text, encoding="utf-8")


def entry_of(py: dict[str, str]) -> str:
    for name in ("train_gpt.py", *sorted(py)):
        if name in py and name.startswith("train_gpt"):
            return name
    return next(iter(sorted(py)), "train_gpt.py")


def check_folder(folder: Path, name: str, n: int, seed: int, fam: dict[str, str], scratch: Path, explain: bool) -> dict:
    rec = audit(folder)
    if rec is None:
        return {"folder": name, "error": "not one record folder"}
    base = signature(rec, fam)
    py = read_py(folder)
    entry = entry_of(py)
    row = {"folder": name, "base": list(base), "mutants": 0, "misses": []}
    for k in range(n):
        m = mutate(py, seed + k, entry=entry)
        if not m.applied:
            continue
        dst = scratch / f"{zlib.crc32(name.encode())}_{k}" / "records" / folder.parent.name / folder.name
        materialize(folder, dst, m.files, py)
        got = audit(dst)
        row["mutants"] += 1
        sig = signature(got, fam) if got else ("unreadable", ())
        if sig != base:
            culprits = []
            for j, t in enumerate(TRANSFORMS if explain and not row["misses"] else ()):  # which single transform the engine does not see through
                one = mutate(py, seed + k, [t], entry=entry)
                if not one.applied:
                    continue
                d1 = scratch / f"{zlib.crc32(name.encode())}_{k}_{j}" / "records" / folder.parent.name / folder.name
                materialize(folder, d1, one.files, py)
                r1 = audit(d1)
                if (signature(r1, fam) if r1 else ("unreadable", ())) != base:
                    culprits.append(t)
                shutil.rmtree(d1.parents[2], ignore_errors=True)
            row["misses"].append({"seed": seed + k, "got": list(sig), "applied": m.applied, "single": culprits,
                                  "explained": explain and not row["misses"]})
        shutil.rmtree(dst.parents[2], ignore_errors=True)
    return row


def _timed(path: Path, name: str, n: int, seed: int, fam: dict[str, str], scratch: Path, explain: bool) -> dict:
    t1 = time.perf_counter()
    row = check_folder(path, name, n, seed, fam, scratch, explain)
    row["seconds"] = round(time.perf_counter() - t1, 2)
    return row


def labelled(prs: Path, labels: Path) -> list[tuple[str, Path]]:
    out = []
    with open(labels, encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            p = prs / r["pr"] / "records" / r["folder"]
            out.append((f"#{r['pr']} {r['folder']} [{r['verdict']}]", p))
    return out


def report(title: str, rows: list[dict]) -> None:
    done = [r for r in rows if "error" not in r]
    n = sum(r["mutants"] for r in done)
    miss = sum(len(r["misses"]) for r in done)
    rate = 100.0 * (n - miss) / n if n else 0.0
    print(f"\n## {title}: {len(done)} folders, {n} mutants, {n - miss} invariant ({rate:.1f}%)")
    for r in rows:
        if "error" in r:
            print(f"  skipped {r['folder']}: {r['error']}")
    for r in done:
        for m in r["misses"]:
            alone = f"; alone: {', '.join(m['single']) or 'none (only in combination)'}" if m["explained"] else ""
            print(f"  MISS {r['folder']} seed {m['seed']}: {tuple(r['base'])} -> {tuple(m['got'])}{alone}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prs", default=os.environ.get("PGOLF_PRS"), help="extracted PR tree (default $PGOLF_PRS)")
    ap.add_argument("--labels", default=str(ROOT.parent / "shared" / "labels" / "labels.tsv"))
    ap.add_argument("-n", type=int, default=4, help="mutants per folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-adversarial", action="store_true", help="skip tests/adversarial")
    ap.add_argument("--only-labels", action="store_true", help="same as --no-adversarial")
    ap.add_argument("--limit", type=int, default=0, help="at most this many folders per set (0: all)")
    ap.add_argument("--explain", action="store_true",
                    help="on a folder's first miss, try each transform alone to say which one the engine misses")
    ap.add_argument("--jobs", type=int, default=1, help="folders audited in parallel (processes)")
    ap.add_argument("--json", help="write the per-folder rows here")
    a = ap.parse_args()
    fam = family_map()
    sets: list[tuple[str, list[tuple[str, Path]]]] = []
    if a.prs:
        prs, labels = Path(a.prs), Path(a.labels)
        if not prs.is_dir() or not labels.is_file():
            print(f"{prs if not prs.is_dir() else labels}: not found", file=sys.stderr)
            return 2
        sets.append(("labelled folders", labelled(prs, labels)))
    else:
        print("no --prs (or $PGOLF_PRS): labelled folders skipped", file=sys.stderr)
    if not (a.no_adversarial or a.only_labels):
        adv = ROOT / "tests" / "adversarial" / "records"
        sets.append(("adversarial suite", [(p.name, p) for p in sorted(adv.glob("*/*")) if p.is_dir()]))
    if not sets:
        return 2
    out = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pgolf-meta-") as tmp, ProcessPoolExecutor(max(1, a.jobs)) as pool:
        for title, folders in sets:
            futures = []
            for name, path in folders[: a.limit or None]:
                if not path.is_dir():
                    futures.append((name, None))
                    continue
                futures.append((name, pool.submit(_timed, path, name, a.n, a.seed, fam, Path(tmp), a.explain)))
            rows = []
            for name, fut in futures:
                rows.append(fut.result() if fut else {"folder": name, "error": "folder not found"})
                print(f"{name}: {rows[-1].get('mutants', 0)} mutants, {len(rows[-1].get('misses', []))} misses "
                      f"({rows[-1].get('seconds', 0)}s)", file=sys.stderr)
            out[title] = rows
    for title, rows in out.items():
        report(title, rows)
    secs = [r["seconds"] for rows in out.values() for r in rows if "seconds" in r]
    if secs:
        print(f"\n{len(secs)} folders in {time.perf_counter() - t0:.0f}s (median {statistics.median(secs):.1f}s per folder)")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
