"""Dynamic probes over real record folders, on CPU, each in bubblewrap with the network off.

    python benchmarks/bench_probes.py --out probes.jsonl [--timeout 180] [--label FOLDER=LABEL ...] FOLDER ...

Each folder is probed (``probes.probe_record``: the whole script through the CPU layer at toy size);
one JSON line per folder (folder, seconds, findings by rule and severity, reasons for PROBE-NOT-RUN),
then a summary: share run, folders flagged, p50/p95 minutes. Folders named in --labels (pr, folder,
label columns) get their label in the line.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--label", action="append", default=[], help="FOLDER=LABEL (repeatable)")
    ap.add_argument("--no-sandbox", action="store_true")
    a = ap.parse_args(argv)
    from auditor.reproduce.probes import probe_record
    from auditor.reproduce.sandbox import bwrap_works

    labels = dict(x.split("=", 1) for x in a.label)
    sandbox = "none" if a.no_sandbox else "bwrap"
    if sandbox == "bwrap" and not bwrap_works()[0]:
        print("bench_probes: bubblewrap does not work here", file=sys.stderr)
        return 2
    tok_cache = Path(tempfile.mkdtemp(prefix="pgolf-bench-tok-"))
    done = set()
    out = Path(a.out)
    if out.exists():
        done = {json.loads(x)["folder"] for x in out.read_text().splitlines() if x.strip()}
    for folder in a.folders:
        if folder in done:
            continue
        work = Path(tempfile.mkdtemp(prefix="pgolf-bench-probe-"))
        t0 = time.monotonic()
        try:
            res = probe_record(Path(folder), sandbox=sandbox, work=work, timeout_s=a.timeout, tok_cache=tok_cache)
            findings = [{"rule": f.rule, "severity": f.severity.value, "line": f.line, "message": f.message, "evidence": f.evidence[:5]}
                        for f in res.findings]
            err = None
            nums = next(iter(res.numbers.values()), {}) if res.numbers else {}
            mode = nums.get("mode") if isinstance(nums, dict) else None
        except Exception as exc:  # a crash of pgolf is a result of the benchmark too
            findings, err, mode = [], f"{type(exc).__name__}: {exc}", None
        secs = time.monotonic() - t0
        shutil.rmtree(work, ignore_errors=True)
        ran = any(f["rule"] == "PROBE-SUFFIX-FLIP" for f in findings)
        flagged = [f["rule"] for f in findings if f["rule"].startswith("PROBE-") and f["severity"] == "error"]
        line = {"folder": folder, "label": labels.get(folder), "seconds": round(secs, 1), "ran": ran, "flagged": flagged, "mode": mode, "crash": err,
                "findings": findings}
        with out.open("a") as fh:
            fh.write(json.dumps(line) + "\n")
        print(f"{secs:6.1f}s ran={ran} mode={mode} flagged={flagged} {folder}", flush=True)
    rows = [json.loads(x) for x in out.read_text().splitlines() if x.strip()]
    secs = sorted(r["seconds"] for r in rows)
    if secs:
        p = lambda q: secs[min(len(secs) - 1, int(q * len(secs)))] / 60  # noqa: E731
        print(f"{len(rows)} folders: probes ran on {sum(r['ran'] for r in rows)} ({100 * sum(r['ran'] for r in rows) / len(rows):.0f} %); "
              f"flagged {sum(bool(r['flagged']) for r in rows)}; p50 {p(0.5):.2f} min, p95 {p(0.95):.2f} min per folder")
    return 0


if __name__ == "__main__":
    sys.exit(main())
