"""Eval-integrity findings on real pull-request folders outside the label set: a seeded sample to
audit and then judge by reading the code.

    python benchmarks/bench_unseen.py --prs DIR --labels TSV [--seed 12] [--n 40] [--list] [--json out.json]

DIR is the extracted PR tree (DIR/<N>/records/<track>/<folder>, as PGOLF_PRS). The sample: every PR
number under DIR that is not in the first column of TSV and that has a record folder shipping a .py
file; one folder per PR (the first, in name order, with a train_gpt.py, else the first with any .py);
random.Random(seed).sample of n of those PR numbers (taken from the ascending list), reported in
ascending order. With --list only the sample is printed; otherwise every sampled folder is audited
in-process (the call the CLI's workers make) and its errors and warnings from the eval-integrity
families (EVAL/NGRAM/TTT/SLOT/ORACLE/DATA/NET) are listed with file:line, followed by the counts.
The judgment (true/false positive, misses) is made by reading the code; this only draws and audits.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FAMILIES = ("EVAL-", "NGRAM-", "TTT-", "SLOT-", "ORACLE-", "DATA-", "NET-")


def labelled_prs(tsv: Path) -> set[int]:
    out: set[int] = set()
    for line in tsv.read_text(encoding="utf-8").splitlines()[1:]:
        first = line.split("\t", 1)[0]
        out.update(int(n) for n in re.findall(r"\d+", first))
    return out


def _ships_py(folder: Path) -> bool:
    return any(p.is_file() and not p.is_symlink() for p in folder.rglob("*.py"))


def pick_folder(pr_dir: Path) -> Path | None:
    folders = sorted(f for f in pr_dir.glob("records/*/*") if f.is_dir() and not f.is_symlink())
    with_main = [f for f in folders if (f / "train_gpt.py").is_file()]
    if with_main:
        return with_main[0]
    with_py = [f for f in folders if _ships_py(f)]
    return with_py[0] if with_py else None


def draw(prs: Path, labels: set[int], seed: int, n: int) -> list[tuple[int, Path]]:
    eligible: list[tuple[int, Path]] = []
    for d in sorted((d for d in prs.iterdir() if d.name.isdigit()), key=lambda d: int(d.name)):
        if int(d.name) in labels:
            continue
        folder = pick_folder(d)
        if folder is not None:
            eligible.append((int(d.name), folder))
    if n > len(eligible):
        raise SystemExit(f"{prs}: only {len(eligible)} eligible PRs, asked for {n}")
    return sorted(random.Random(seed).sample(eligible, n))


def audit(sample: list[tuple[int, Path]]) -> list[dict]:
    from auditor.context import AuditOptions
    from auditor.discover import discover
    from auditor.pipeline import audit_folder

    rows = []
    for pr, path in sample:
        disc = discover([str(path)])
        for folder in disc.folders:
            t0 = time.perf_counter()
            rec = audit_folder(folder, AuditOptions())
            secs = time.perf_counter() - t0
            found = []
            for f in rec.findings:
                sev = getattr(f.severity, "value", str(f.severity)).lower()
                if f.rule.startswith(FAMILIES) and sev in ("error", "warning") and not f.waived:
                    found.append({"rule": f.rule, "severity": sev, "where": f"{f.file}:{f.line}",
                                  "message": f.message[:200]})
            rows.append({"pr": pr, "folder": f"{path.parent.name}/{path.name}", "verdict": str(rec.verdict),
                         "seconds": round(secs, 2), "findings": found})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prs", required=True, help="extracted PR tree: DIR/<N>/records/<track>/<folder>")
    ap.add_argument("--labels", required=True, help="labels TSV (PR numbers in the first column are left out)")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--list", action="store_true", help="print the sample only, do not audit")
    ap.add_argument("--json", help="write the per-folder rows here")
    a = ap.parse_args()
    prs, tsv = Path(a.prs), Path(a.labels)
    if not prs.is_dir():
        print(f"{prs}: not a directory", file=sys.stderr)
        return 2
    if not tsv.is_file():
        print(f"{tsv}: no such file", file=sys.stderr)
        return 2
    sample = draw(prs, labelled_prs(tsv), a.seed, a.n)
    print(f"seed {a.seed}, n {a.n}: PRs " + " ".join(str(pr) for pr, _ in sample))
    if a.list:
        for pr, path in sample:
            print(f"{pr}\t{path.relative_to(prs)}")
        return 0
    rows = audit(sample)
    err = warn = 0
    for r in rows:
        sevs = {f["severity"] for f in r["findings"]}
        err += "error" in sevs
        warn += "warning" in sevs and "error" not in sevs
        print(f"{r['pr']}\t{r['folder']}\t{r['verdict']}\t{r['seconds']}s")
        for f in r["findings"]:
            print(f"    {f['severity']:7} {f['rule']} {f['where']}: {f['message']}")
    print(f"\n{len(rows)} folders: {err} with an eval-family error, {warn} with only eval-family warnings, "
          f"{len(rows) - err - warn} with neither")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
