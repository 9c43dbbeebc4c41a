"""Audit every PR head of the challenge repository straight from git objects, cold then warm.

    python benchmarks/bench_refs.py GITDIR [--refs 'refs/pull/*/head'] [--jobs 2] [--cache DIR] [--out FILE.json]

GITDIR (or $PGOLF_CHALLENGE_REPO) is a clone with PR refs (``git fetch origin '+refs/pull/*/head:refs/pull/*/head'``).
The cold run starts from an empty cache directory; the warm run repeats the same command in a new
process, so only the on-disk cache (ref lists and results keyed by tree id) carries over. Reports
folders, seconds, the load average around each run, crashes (folders whose worker died or timed out,
rules that could not finish), verdicts, and how many failing folders have an admissible score.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def one_run(gitdir: str, refs: list[str], jobs: int, cache: str) -> dict:
    from auditor.context import AuditOptions
    from auditor.gitsource import audit_refs

    t0 = time.perf_counter()
    last = [0.0]

    def progress(done: int, n: int, _label: str) -> None:  # a line a minute on stderr: a long cold run shows it is alive
        now = time.perf_counter()
        if now - last[0] >= 60 or done == n:
            last[0] = now
            print(f"  {done}/{n} folders audited after {now - t0:.0f} s", file=sys.stderr, flush=True)

    ra = audit_refs(gitdir, refs, AuditOptions(), jobs=jobs, cache=cache, progress=progress)
    seconds = time.perf_counter() - t0
    recs = ra.report.records
    rule_crashes = [(r.path, p.message) for r in recs for p in r.errors if "could not finish" in p.message]
    fails = [r for r in recs if r.verdict == "fail"]
    status = Counter(r.admissible.status if r.admissible else "none" for r in fails)
    reasons = Counter((r.admissible.reason or "").split(" (")[0] for r in fails if r.admissible and r.admissible.val_bpb is None)
    return {
        "seconds": round(seconds, 1), "refs": len(ra.per_ref), "folders": len(recs), "audited": ra.audited,
        "cached": ra.cached, "distinct_trees": len({f[3] if isinstance(f, tuple) else f.tree_oid for f in ra.folders}),
        "not_fully_audited": len(ra.failed), "not_fully_audited_examples": ra.failed[:10],
        "rule_crashes": len(rule_crashes), "rule_crash_examples": rule_crashes[:10],
        "verdicts": dict(Counter(r.verdict for r in recs)),
        "failing_with_admissible": status.get("derived", 0), "failing": len(fails),
        "failing_admissible_status": dict(status), "not_derivable_reasons": dict(reasons.most_common(12)),
        "report_problems": len(ra.report.errors),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("gitdir", nargs="?", default=os.environ.get("PGOLF_CHALLENGE_REPO"))
    ap.add_argument("--refs", action="append", default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", default=None, help="cache directory (default: a fresh temporary one)")
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    ap.add_argument("--phase", choices=("both", "one"), default="both", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if not a.gitdir:
        print("bench_refs: give the challenge repository's git dir (or set PGOLF_CHALLENGE_REPO)", file=sys.stderr)
        return 2
    refs = a.refs or ["refs/pull/*/head"]
    if a.phase == "one":
        print(json.dumps(one_run(a.gitdir, refs, a.jobs, a.cache)))
        return 0
    cache = a.cache or tempfile.mkdtemp(prefix="pgolf-bench-refs-")
    out: dict = {"gitdir_refs": refs, "jobs": a.jobs, "cpus": os.cpu_count()}
    for phase in ("cold", "warm"):
        load0 = os.getloadavg()
        cmd = [sys.executable, __file__, a.gitdir, "--jobs", str(a.jobs), "--cache", cache, "--phase", "one"]
        for r in refs:
            cmd += ["--refs", r]
        t0 = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)  # progress goes straight to our stderr
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        # on a shared machine wall time measures the neighbours too: CPU seconds of the run and all its
        # workers and git processes say what the run itself costs (÷ jobs ≈ its wall time when idle)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        if p.returncode != 0:
            return 1
        res = json.loads(p.stdout.strip().splitlines()[-1])
        res["wall_seconds_with_startup"] = round(wall, 1)
        res["cpu_seconds"] = round(cpu, 1)
        res["cpu_seconds_per_job"] = round(cpu / max(1, a.jobs), 1)
        res["loadavg_before"] = [round(x, 2) for x in load0]
        res["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        out[phase] = res
        print(f"{phase}: {res['folders']} folders from {res['refs']} refs in {res['seconds']} s "
              f"({res['audited']} audited, {res['cached']} cached), {res['cpu_seconds']} CPU s; "
              f"load {res['loadavg_before']} -> {res['loadavg_after']}",
              file=sys.stderr)
    text = json.dumps(out, indent=2)
    if a.out:
        Path(a.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
