"""Time a full audit of the shared data corpus (records.md §7): reading, measuring and every rule.

    python benchmarks/bench_corpus.py [--rules ID,ID] [--limit N]

Prints folders, wall time, folders/s, the slowest folders, and the parse-level numbers of issue 2:
crashes, claims that agree with the measured final, claims found in no log. The corpus has no code
(train_gpt.py was removed), so code rules see nothing; the figure is the parsers' and log rules' cost.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auditor.context import AuditOptions  # noqa: E402
from auditor.pipeline import audit_folder  # noqa: E402
from rules.report_consistency import same, tolerance  # noqa: E402
from tests.corpus import corpus_rows, record_folder  # noqa: E402
from tests.helpers import CORPUS  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", default="", help="comma-separated rule ids (default: all)")
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    if not (CORPUS / "INDEX.tsv").is_file():
        print(f"no corpus at {CORPUS}")
        return 2
    only = {r.strip() for r in args.rules.split(",") if r.strip()} or None
    rows = corpus_rows()[: args.limit or None]
    crashes, times = [], []
    checkable = agree = nowhere = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for row in rows:
        t = time.perf_counter()
        try:
            rec = audit_folder(record_folder(row), AuditOptions(only_rules=only))
        except Exception as exc:
            crashes.append(f"{row.source}/{row.folder}: {type(exc).__name__}: {exc}")
            continue
        times.append((time.perf_counter() - t, f"{row.source}/{row.folder}"))
        crashes += [p.line() for p in rec.errors if "could not" in p.message]
        c = rec.claims.val_bpb
        n_logs = len(rec.measured.extra.get("logs_used", [])) + len(rec.measured.extra.get("logs_ignored", []))
        if c is not None and n_logs:
            checkable += 1
            tol = tolerance(c)
            if same(rec.measured.val_bpb, c, tol) or any(same(s.val_bpb, c, tol) for s in rec.measured.seeds):
                agree += 1
        if any(f.rule == "REPORT-CONSISTENCY" and "matches no value" in f.message for f in rec.findings):
            nowhere += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"folders: {len(rows)}  wall: {wall:.1f} s  ({len(rows) / wall:.0f} folders/s)  cpu: {cpu:.1f} s "
          f"({len(rows) / cpu:.0f} folders/s of CPU)  rules: {'all' if only is None else ','.join(sorted(only))}")
    print(f"crashes: {len(crashes)}")
    for c in crashes[:10]:
        print("  ", c)
    print(f"claim agrees with the measured final: {agree} of {checkable} checkable (spec reference 1,066 of 1,410)")
    print(f"claims found in no log: {nowhere} (spec: 186)")
    print("slowest folders:")
    for secs, name in sorted(times, reverse=True)[:5]:
        print(f"  {secs * 1000:7.0f} ms  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
