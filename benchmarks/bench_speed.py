"""CPU time per folder of a full in-process audit, and the findings it made (local only).

    python benchmarks/bench_speed.py labels --prs PRS [--labels PATH] [--dump OUT.json] [--top N]
    python benchmarks/bench_speed.py folders DIR... [--dump OUT.json]   # every record folder under DIR
    python benchmarks/bench_speed.py diff BEFORE.json AFTER.json        # findings that changed

Each folder is audited cold (the process-wide parse cache is cleared first) and timed with
``time.process_time`` (this process's CPU seconds, so a loaded shared machine does not inflate the
figure) and ``time.perf_counter`` (wall). Prints p50/p95/max of both and the slowest folders.
``--dump`` writes every folder's findings as (rule, severity, file, line, message) plus its
verdict, so two trees can be compared with ``diff``: a speed change must not change a finding.
``--profile OUT.prof`` runs the audits under cProfile (the times then include its overhead);
``--repeat N`` audits each folder N times and keeps the least CPU and wall time of the N.

PRS holds the extracted PR heads (``<PR>/records/<track>/<folder>``, default ``$PGOLF_PRS``);
the labels file lists ``pr<TAB>track/folder<TAB>...`` rows (default ``../shared/labels/labels.tsv``).
"""
from __future__ import annotations

import argparse
import json
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


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def audit_one(path: Path):
    """(record, cpu s, wall s) of one cold audit, or None when ``path`` holds no record folder."""
    _index._cache.clear()
    disc = discover([str(path)])
    if not disc.folders:
        return None
    c0, t0 = time.process_time(), time.perf_counter()
    rec = audit_folder(disc.folders[0], AuditOptions())
    return rec, time.process_time() - c0, time.perf_counter() - t0


def findings_of(rec) -> dict:
    return {"verdict": str(getattr(rec.verdict, "value", rec.verdict)),
            "findings": sorted([f.rule, f.severity.value, f.file or "", f.line or 0, f.message] for f in rec.findings),
            "errors": sorted(p.message for p in rec.errors)}


def labelled(a) -> list[tuple[str, Path]]:
    rows = [l.rstrip("\n").split("\t") for l in open(a.labels, encoding="utf-8")][1:]
    out = []
    for r in rows:
        path = Path(a.prs) / r[0] / "records" / r[1]
        if path.is_dir():
            out.append((f"{r[0]}/{r[1]}", path))
        else:
            print(f"{r[0]}: folder missing ({path})", file=sys.stderr)
    return out


def under(dirs: list[str]) -> list[tuple[str, Path]]:
    out = []
    for d in dirs:
        for f in discover([d]).folders:
            out.append((f"{Path(d).name}:{f.display}", Path(f.path)))
    return out


def run(items: list[tuple[str, Path]], a) -> int:
    prof = None
    if a.profile:
        import cProfile

        prof = cProfile.Profile()
    cpu, wall, rows, dump = [], [], [], {}
    c_all, t_all = time.process_time(), time.perf_counter()
    for key, path in items:
        if prof:
            prof.enable()
        got = audit_one(path)
        for _ in range(a.repeat - 1):  # the least of N cold runs: a shared machine only ever adds time
            again = audit_one(path)
            got = (got[0], min(got[1], again[1]), min(got[2], again[2])) if got and again else got
        if prof:
            prof.disable()
        if got is None:
            continue
        rec, c, w = got
        cpu.append(c)
        wall.append(w)
        rows.append((c, w, key))
        dump[key] = findings_of(rec)
    c_all, t_all = time.process_time() - c_all, time.perf_counter() - t_all
    if not cpu:
        print("no record folders")
        return 2
    print(f"folders: {len(cpu)}  total cpu {sum(cpu):.2f} s, wall {t_all:.2f} s (process cpu {c_all:.2f} s)")
    print(f"cpu  per folder: p50 {statistics.median(cpu):.3f} s  p95 {_pct(cpu, 0.95):.3f} s  max {max(cpu):.3f} s")
    print(f"wall per folder: p50 {statistics.median(wall):.3f} s  p95 {_pct(wall, 0.95):.3f} s  max {max(wall):.3f} s")
    for c, w, key in sorted(rows, reverse=True)[: a.top]:
        print(f"  {c:6.3f} cpu  {w:6.3f} wall  {key}")
    if a.dump:
        Path(a.dump).write_text(json.dumps(dump, indent=1, sort_keys=True), encoding="utf-8")
    if prof:
        prof.dump_stats(a.profile)
    return 0


def diff(before: str, after: str) -> int:
    b = json.loads(Path(before).read_text(encoding="utf-8"))
    c = json.loads(Path(after).read_text(encoding="utf-8"))
    changed = 0
    for key in sorted(set(b) | set(c)):
        x, y = b.get(key), c.get(key)
        if x == y:
            continue
        changed += 1
        print(f"{key}:")
        if x is None or y is None:
            print("   only in", before if y is None else after)
            continue
        if x["verdict"] != y["verdict"]:
            print(f"   verdict {x['verdict']} -> {y['verdict']}")
        xs, ys = {tuple(f) for f in x["findings"]}, {tuple(f) for f in y["findings"]}
        for f in sorted(xs - ys):
            print("   -", f[:4], f[4][:100])
        for f in sorted(ys - xs):
            print("   +", f[:4], f[4][:100])
        if x["errors"] != y["errors"]:
            print(f"   problems {x['errors']} -> {y['errors']}")
    print(f"{len(set(b) | set(c))} folders, {changed} changed")
    return 1 if changed else 0


def main() -> int:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("labels", "folders"):
        p = sub.add_parser(name)
        p.add_argument("--dump", help="write the findings of every folder here (JSON)")
        p.add_argument("--top", type=int, default=8, help="list the N slowest folders")
        p.add_argument("--profile", help="run under cProfile and write the stats here")
        p.add_argument("--repeat", type=int, default=1, help="audit each folder N times (cold) and keep the least time")
        if name == "labels":
            p.add_argument("--prs", default=os.environ.get("PGOLF_PRS"), help="extracted PR heads (default: $PGOLF_PRS)")
            p.add_argument("--labels", default=str(Path(__file__).resolve().parents[2] / "shared/labels/labels.tsv"))
        else:
            p.add_argument("dirs", nargs="+")
    p = sub.add_parser("diff")
    p.add_argument("before")
    p.add_argument("after")
    a = ap.parse_args()
    if a.cmd == "diff":
        return diff(a.before, a.after)
    if a.cmd == "labels":
        if not a.prs:
            ap.error("say where the extracted PR heads are: --prs PATH or PGOLF_PRS")
        return run(labelled(a), a)
    return run(under(a.dirs), a)


if __name__ == "__main__":
    raise SystemExit(main())
