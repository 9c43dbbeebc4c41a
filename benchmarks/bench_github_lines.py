"""How many lines `pgolf audit -f github` prints over a records tree, by kind (the CI-noise figure
of issue 14). Usage: python benchmarks/bench_github_lines.py RECORDS [--show-info] [--jobs N]
(RECORDS defaults to $PGOLF_HEAD, the challenge's extracted merged records)."""
from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("records", nargs="?", default=os.environ.get("PGOLF_HEAD", ""))
    ap.add_argument("--show-info", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    if not args.records:
        ap.error("give the records tree (or set PGOLF_HEAD)")
    cmd = [sys.executable, "-P", "-m", "auditor", "audit", args.records, "-f", "github", "--jobs", str(args.jobs), "--fail-on", "never"]
    if args.show_info:
        cmd.append("--show-info")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = proc.stdout.splitlines()
    kinds = collections.Counter(line.split(" ", 1)[0].split("::")[1] if line.startswith("::") else "summary" for line in lines)
    print(json.dumps({"lines": len(lines), "by_kind": dict(kinds), "seconds": round(time.perf_counter() - t0, 1),
                      "exit": proc.returncode, "show_info": args.show_info}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
