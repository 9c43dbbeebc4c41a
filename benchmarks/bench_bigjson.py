"""Memory of the main process when workers audit folders with huge submission.json files.

    python benchmarks/bench_bigjson.py                      # 50 folders, 16 MB of numbers each, --jobs 2
    python benchmarks/bench_bigjson.py --folders 2 --mb 16 --jobs 2 --dir /tmp/bigjson

Each folder is a small valid record whose submission.json carries a 16 MB list of numbers. The
audit runs as `pgolf audit DIR --jobs N --format json` in a child interpreter that reports its own
peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``: the main process only; the
workers are separate processes). Printed: peak RSS of the main process, wall time, verdicts, and
whether every folder says its submission.json is too large.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

LOG = ("seed:{s}\nstep:1/100 train_loss:6.9000 train_time:50ms step_avg:50.00ms\n"
       "step:100/100 val_loss:2.0000 val_bpb:1.2000 train_time:5000ms step_avg:50.00ms\n"
       "final_int8_zlib_roundtrip_exact val_loss:2.00000000 val_bpb:1.20000000\n")

MEASURE = """
import resource, sys
from auditor.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(f"PGOLF_MAXRSS_KB {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} EXIT {code}", file=sys.stderr)
"""


def make_tree(root: Path, folders: int, mb: float) -> Path:
    tree = root / "records" / "track_10min_16mb"
    tree.mkdir(parents=True, exist_ok=True)
    numbers = []
    size = 0
    i = 0
    while size < mb * 1_000_000:  # "1.2345678, " repeated: numbers the parser would turn into objects
        x = f"{1.0 + (i % 100000) * 1e-7:.7f}"
        numbers.append(x)
        size += len(x) + 2
        i += 1
    payload = '{"author": "bench", "github_id": "bench", "name": "big", "val_bpb": 1.2, "seeds": [1, 2, 3], "x": [' + \
        ", ".join(numbers) + "]}\n"
    for n in range(folders):
        f = tree / f"2026-01-01_Big{n:03d}"
        f.mkdir(exist_ok=True)
        (f / "submission.json").write_text(payload, encoding="utf-8")
        (f / "README.md").write_text("# big\n", encoding="utf-8")
        (f / "train_gpt.py").write_text("print('train')\n", encoding="utf-8")
        for s in (1, 2, 3):
            (f / f"train_seed{s}.log").write_text(LOG.format(s=s), encoding="utf-8")
    return root / "records"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folders", type=int, default=50)
    ap.add_argument("--mb", type=float, default=16.0, help="size of each submission.json, megabytes")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--dir", help="where to build the folders (default: a temporary folder, removed after)")
    args = ap.parse_args(argv)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="pgolf-bigjson-"))
    try:
        t0 = time.perf_counter()
        tree = make_tree(root, args.folders, args.mb)
        built = time.perf_counter() - t0
        out = root / "report.json"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", MEASURE, "audit", str(tree), "--jobs", str(args.jobs), "--format", "json",
                               "-o", str(out), "--quiet"], capture_output=True, text=True, cwd=root)
        wall = time.perf_counter() - t0
        line = next((x for x in proc.stderr.splitlines() if x.startswith("PGOLF_MAXRSS_KB")), None)
        if line is None:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        kb, code = int(line.split()[1]), line.split()[3]
        doc = json.loads(out.read_text())
        verdicts = Counter(r["verdict"] for r in doc["records"])
        too_large = sum(any(e["file"] == "submission.json" and "too large" in e["message"] for e in r["errors"])
                        for r in doc["records"])
        print(f"folders            {args.folders} × {args.mb:g} MB submission.json (built in {built:.1f} s)")
        print(f"jobs               {args.jobs}")
        print(f"main process peak  {kb / 1024:.0f} MiB RSS (getrusage RUSAGE_SELF in the pgolf process)")
        print(f"wall time          {wall:.1f} s")
        print(f"exit code          {code}")
        print(f"verdicts           {dict(verdicts)}")
        print(f"'too large' lines  {too_large} of {len(doc['records'])}")
        tb = "Traceback (most recent call last)" in proc.stderr + proc.stdout
        print(f"tracebacks         {int(tb)}")
        return 0 if kb <= 1024 * 1024 and not tb else 1
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
