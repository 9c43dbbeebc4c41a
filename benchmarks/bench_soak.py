"""Soak benchmark: audit many record folders in one `pgolf audit --jobs N` run and report what a
reviewer needs to trust it: folders audited, crashes, tracebacks, unreadable items, wall time,
and the slowest files.

    python benchmarks/bench_soak.py                       # the shared corpus (../shared/corpus)
    python benchmarks/bench_soak.py --prs PRS             # every PR head extracted there (PRS/<PR>/records/...)
    python benchmarks/bench_soak.py PATH... --jobs 2 --timeout 120 --keep out/

It runs the real command line in a subprocess (so a traceback anywhere would show in its stdout or
stderr), with ``PGOLF_TIMINGS_FILE`` set so the workers time each file they read and each stage.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"

# Problems that mean "this item could not be read" (fs.py, discover.py, the readers, the runner).
UNREADABLE = re.compile(
    r"binary content|over the [\d,]+-byte cap|not followed|not a regular file|cannot (read|stat|list|open)|"
    r"invalid JSON|not valid JSON|does not parse|could not be decoded|nested more than|more than \d+ files|"
    r"audit (failed|stopped)|worker process", re.I)
CRASH = re.compile(r"could not finish|audit failed|audit stopped|worker process|could not be fully parsed|could not read the claims", re.I)


def run_cli(paths: list[str], jobs: int, timeout_s: float, workdir: Path, cwd: Path | None = None,
            only_rules: list[str] | None = None) -> dict:
    """Run `pgolf audit` once over ``paths``; returns the raw outputs and the wall time."""
    report, timings = workdir / "report.json", workdir / "timings.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGOLF_")}
    env.update(PGOLF_TIMINGS_FILE=str(timings), PGOLF_FOLDER_TIMEOUT=str(timeout_s))
    exe = Path(sys.executable).parent / "pgolf"
    cmd = [str(exe) if exe.exists() else "pgolf", "audit", *paths, "--jobs", str(jobs), "--format", "json",
           "--output", str(report), "--fail-on", "never", "--quiet"]
    for r in only_rules or []:
        cmd += ["--rule", r]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd or workdir, capture_output=True, text=True, errors="backslashreplace", env=env)
    wall = time.perf_counter() - t0
    return {
        "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr, "wall_s": wall,
        "report": json.loads(report.read_text()) if report.exists() else None,
        "timings": json.loads(timings.read_text()) if timings.exists() else None,
    }


def summarise(out: dict) -> dict:
    rep = out["report"] or {"records": [], "errors": []}
    recs = rep["records"]
    with_errors = [r for r in recs if r["errors"]]
    unreadable = [r for r in recs if any(UNREADABLE.search(e["message"]) for e in r["errors"])]
    crashes = [f"{r['path']}: {e['file']}: {e['message']}" for r in recs for e in r["errors"] if CRASH.search(e["message"])]
    tracebacks = out["stdout"].count("Traceback (most recent call last)") + out["stderr"].count("Traceback (most recent call last)")
    stderr_lines = [ln for ln in out["stderr"].splitlines() if ln.strip()]
    t = (out["timings"] or {}).get("timings", [])
    files = sorted((x for x in t if x["stage"] in ("claims", "log", "code")), key=lambda x: -x["seconds"])
    folders = sorted((x for x in t if x["stage"] == "folder"), key=lambda x: -x["seconds"])
    stage_totals = Counter()
    for x in t:
        stage_totals[x["stage"]] += x["seconds"]
    reasons = Counter(re.sub(r"\d[\d,.]*", "N", e["message"])[:80] for r in unreadable for e in r["errors"]
                      if UNREADABLE.search(e["message"]))
    return {
        "returncode": out["returncode"],
        "wall_s": round(out["wall_s"], 1),
        "folders_audited": len(recs),
        "report_errors": len(rep["errors"]),
        "folders_with_error_lines": len(with_errors),
        "folders_with_unreadable_items": len(unreadable),
        "unreadable_reasons": reasons.most_common(12),
        "crashes": crashes,
        "tracebacks": tracebacks,
        "stderr_lines_not_one_line_problems": [ln for ln in stderr_lines if not ln.startswith("pgolf: ")][:20],
        "slowest_files": [(x["folder"], x["file"], x["stage"], round(x["seconds"], 3)) for x in files[:5]],
        "slowest_folders": [(x["folder"], round(x["seconds"], 3)) for x in folders[:5]],
        "stage_seconds": {k: round(v, 1) for k, v in stage_totals.most_common()},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", help="trees to audit (default: the shared corpus)")
    ap.add_argument("--prs", help="a folder of extracted PR heads (<PR>/records/...): audit every one")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=120.0, help="per-folder time limit, seconds")
    ap.add_argument("--keep", help="copy report.json and timings.json to this folder")
    ap.add_argument("--skip-rule", action="append", default=[], help="leave this rule out (repeatable)")
    args = ap.parse_args(argv)
    paths = list(args.paths)
    if args.prs:
        paths += sorted((str(p) for p in Path(args.prs).iterdir() if (p / "records").is_dir()), key=lambda s: int(Path(s).name)
                        if Path(s).name.isdigit() else 0)
    if not paths:
        paths = [str(CORPUS)]
    with tempfile.TemporaryDirectory(prefix="pgolf-soak-") as tmp:
        only = None
        if args.skip_rule:
            import rules

            skip = {r.upper() for r in args.skip_rule}
            only = [r for r in rules.load_all() if r not in skip]
        out = run_cli(paths, args.jobs, args.timeout, Path(tmp), only_rules=only)
        if args.keep:
            Path(args.keep).mkdir(parents=True, exist_ok=True)
            for name in ("report.json", "timings.json"):
                if (Path(tmp) / name).exists():
                    shutil.copy(Path(tmp) / name, Path(args.keep) / name)
    s = summarise(out)
    print(f"pgolf soak: {len(paths)} path(s), --jobs {args.jobs}, per-folder limit {args.timeout:g} s"
          + (f", rules left out: {', '.join(args.skip_rule)}" if args.skip_rule else ""))
    for k, v in s.items():
        if isinstance(v, list) and v and isinstance(v[0], (list, tuple)):
            print(f"{k}:")
            for row in v:
                print("   ", " | ".join(str(c) for c in row))
        else:
            print(f"{k}: {v}")
    ok = s["tracebacks"] == 0 and not s["crashes"] and s["returncode"] in (0, 1) and not s["stderr_lines_not_one_line_problems"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
