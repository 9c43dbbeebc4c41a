"""Speed and coverage of the eval-integrity rules over the labelled PR folders (local only).

    python benchmarks/bench_rules.py --prs PRS [--head HEAD_RECORDS] [--labels PATH]

PRS holds the extracted PR heads (``<PR>/records/<track>/<folder>``), HEAD_RECORDS the merged
``records/`` of the challenge repository's main branch; they default to the environment variables
``PGOLF_PRS`` and ``PGOLF_HEAD``. Extract them from a fetched challenge repository (a bare git dir):

    git --git-dir=REPO archive refs/heads/main records | tar -x -C HEAD_PARENT
    git --git-dir=REPO archive refs/pull/N/head records | tar -x -C PRS/N

Prints, per labelled folder, the wall time of a full audit (discover, read, measure, every rule)
and the eval-integrity errors it raised; then p50/p95/max, the per-family hit counts for folders
labelled illegal, the misses, and the error count over the merged HEAD folders. Each folder is
audited in a fresh parse cache (cold) so identical files do not flatter the numbers; ``--warm``
keeps the cache.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auditor.context import AuditOptions  # noqa: E402
from auditor.discover import discover  # noqa: E402
from auditor.pipeline import audit_folder  # noqa: E402
from rules.analysis import index as _index  # noqa: E402

FAMILIES = {
    "C1-C4": {"EVAL-CAUSAL", "EVAL-NORMALIZED-DIST", "EVAL-SCORE-BEFORE-UPDATE", "EVAL-SINGLE-PASS", "ORACLE-SELECTION"},
    "NGRAM": {"NGRAM-TARGET-IN-KEY", "NGRAM-HASHED-CACHE"},
    "TTT": {"TTT-SCORE-FIRST", "TTT-MULTI-EPOCH", "TTT-PREQUANT"},
    "SLOT": {"SLOT-SCORED-REGION"},
}
MINE = set().union(*FAMILIES.values())


def family_of(rule: str) -> str | None:
    for fam, ids in FAMILIES.items():
        if rule in ids:
            return fam
    return None


def audit(path: Path, warm: bool):
    if not warm:
        _index._cache.clear()
    disc = discover([str(path)])
    if not disc.folders:
        return None, 0.0
    t0 = time.perf_counter()
    rec = audit_folder(disc.folders[0], AuditOptions())
    return rec, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prs", default=os.environ.get("PGOLF_PRS"), help="extracted PR heads (default: $PGOLF_PRS)")
    ap.add_argument("--head", default=os.environ.get("PGOLF_HEAD"), help="merged records/ at HEAD (default: $PGOLF_HEAD)")
    ap.add_argument("--labels", default=str(Path(__file__).resolve().parents[2] / "shared/labels/labels.tsv"))
    ap.add_argument("--warm", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    if not a.prs:
        ap.error("say where the extracted PR heads are: --prs PATH or PGOLF_PRS")
    rows = [l.rstrip("\n").split("\t") for l in open(a.labels, encoding="utf-8")][1:]
    times, hits, wanted, misses = [], {}, {}, []
    for r in rows:
        pr, folder, verdict, labels = r[0], r[1], r[2], r[3]
        path = Path(a.prs) / pr / "records" / folder
        if not path.is_dir():
            print(f"{pr}: folder missing ({path})")
            continue
        rec, dt = audit(path, a.warm)
        if rec is None:
            continue
        times.append(dt)
        errs = sorted({f.rule for f in rec.findings if f.severity.value == "error" and f.rule in MINE})
        fams_labelled = {family_of(x.split(" ")[0]) for x in labels.split(",")} - {None}
        fams_hit = {family_of(x) for x in errs}
        if verdict == "illegal":
            for fam in fams_labelled:
                wanted[fam] = wanted.get(fam, 0) + 1
                if fam in fams_hit:
                    hits[fam] = hits.get(fam, 0) + 1
                else:
                    misses.append(f"{pr} {fam} ({labels})")
        if not a.quiet:
            print(f"{pr:>5} {verdict:9} {dt * 1000:7.0f} ms  labels={labels}  errors={','.join(errs) or '-'}")
    times.sort()
    if times:
        p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
        print(f"\naudit time over {len(times)} labelled folders: p50 {statistics.median(times):.3f} s, "
              f"p95 {p95:.3f} s, max {times[-1]:.3f} s")
    print("illegal folders with >=1 error of the labelled family:")
    for fam in FAMILIES:
        if fam in wanted:
            print(f"  {fam:6} {hits.get(fam, 0)}/{wanted[fam]}")
    for m in misses:
        print("  miss:", m)
    head = Path(a.head) if a.head else None
    if head is not None and head.is_dir():
        n_err, n_warn, n = 0, 0, 0
        for d in sorted(p for p in head.glob("*/*") if p.is_dir()):
            rec, _ = audit(d, a.warm)
            if rec is None:
                continue
            n += 1
            for f in rec.findings:
                if f.rule in MINE and f.severity.value == "error":
                    n_err += 1
                    print(f"  HEAD error: {d.name}: {f.rule} {f.file}:{f.line} {f.message[:120]}")
                elif f.rule in MINE and f.severity.value == "warning":
                    n_warn += 1
                    print(f"  HEAD warning: {d.name}: {f.rule} {f.file}:{f.line} {f.message[:140]}")
        print(f"merged HEAD folders: {n}; eval-integrity errors {n_err}, warnings {n_warn}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
