"""The adversarial suite's scorecard: per class, illegal folders caught / needing review / missed and
legal folders clean / with a false error.

    python benchmarks/bench_adversarial.py [--suite tests/adversarial] [--json out.json] [--quiet]

Every folder under the suite's records/ is audited with the full pipeline in-process (the same
call the CLI's workers make) and judged against tests/adversarial/manifest.toml by the same judge
tests/test_adversarial.py uses. "needs-review" counts only for class 9 (code that cannot be read:
a "could not be checked" finding is an accepted outcome there). The known-miss list is printed
alongside so a fixed case that is still listed stands out.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from auditor.context import AuditOptions  # noqa: E402
from auditor.discover import discover  # noqa: E402
from auditor.pipeline import audit_folder  # noqa: E402
from tests.adversarial.suite import (CAUGHT, CLEAN, FALSE_ERROR, MISSED, REVIEW, judge, load_known_misses,  # noqa: E402
                                     load_manifest)

CLASS_NAMES = {
    1: "not run under the run's config", 2: "training-time code", 3: "legal shapes",
    4: "target by value", 5: "C3/C4 without the usual names", 6: "C2 without renormalization",
    7: "logs prove a missing stage", 8: "config outside train_gpt.py", 9: "unreadable code",
}


def run(suite: Path) -> list[dict]:
    manifest = load_manifest(suite / "manifest.toml")
    known = load_known_misses(suite / "known_misses.txt")
    disc = discover([str(suite / "records")])
    rows = []
    for folder in disc.folders:
        exp = manifest.get(folder.path.name)
        if exp is None:
            print(f"{folder.display}: not in the manifest, skipped", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        rec = audit_folder(folder, AuditOptions())
        seconds = time.perf_counter() - t0
        outcome, detail = judge(exp, rec)
        rows.append({"folder": exp.name, "class": exp.klass, "legal": exp.legal, "outcome": outcome, "detail": detail,
                     "verdict": rec.verdict, "seconds": round(seconds, 3), "known_miss": exp.name in known})
    missing = set(manifest) - {r["folder"] for r in rows}
    for name in sorted(missing):
        print(f"{name}: in the manifest but not found on disk", file=sys.stderr)
    return rows


def table(rows: list[dict]) -> str:
    by = defaultdict(lambda: defaultdict(int))
    for r in rows:
        by[r["class"]][r["outcome"]] += 1
    out = ["| class | what | folders | caught | needs review (cannot check) | missed | clean (with warnings) | false errors |",
           "|---|---|---|---|---|---|---|---|"]
    warned = defaultdict(int)
    for r in rows:
        if r["outcome"] == CLEAN and r["detail"].startswith("warnings:"):
            warned[r["class"]] += 1
    for k in sorted(by):
        c = by[k]
        n = sum(c.values())
        if k <= 3:
            out.append(f"| {k} (legal) | {CLASS_NAMES[k]} | {n} | | | | {c[CLEAN]} ({warned[k]}) | {c[FALSE_ERROR]} |")
        else:
            out.append(f"| {k} | {CLASS_NAMES[k]} | {n} | {c[CAUGHT]} | {c[REVIEW]} | {c[MISSED]} | | |")
    ill = [r for r in rows if not r["legal"]]
    leg = [r for r in rows if r["legal"]]
    ok_ill = sum(r["outcome"] in (CAUGHT, REVIEW) for r in ill)
    out.append(f"| all | | {len(rows)} | {sum(r['outcome'] == CAUGHT for r in ill)} | "
               f"{sum(r['outcome'] == REVIEW for r in ill)} | {sum(r['outcome'] == MISSED for r in ill)} | "
               f"{sum(r['outcome'] == CLEAN for r in leg)} ({sum(warned.values())}) | "
               f"{sum(r['outcome'] == FALSE_ERROR for r in leg)} |")
    out.append("")
    out.append(f"illegal handled (error of its family, or needs review for class 9): {ok_ill}/{len(ill)}; "
               f"legal with no error: {sum(r['outcome'] == CLEAN for r in leg)}/{len(leg)}")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--suite", default=str(ROOT / "tests" / "adversarial"), help="the suite folder (manifest.toml, records/)")
    ap.add_argument("--json", help="write the per-folder rows here")
    ap.add_argument("--quiet", action="store_true", help="only the table")
    a = ap.parse_args()
    suite = Path(a.suite)
    if not (suite / "manifest.toml").is_file():
        print(f"{suite}: no manifest.toml here", file=sys.stderr)
        return 2
    rows = run(suite)
    print(table(rows))
    if not a.quiet:
        for r in rows:
            if r["outcome"] == CLEAN and r["detail"]:
                print(f"  legal class {r['class']} {r['folder']}: no error, needs review ({r['detail']})")
        bad = [r for r in rows if r["outcome"] in (MISSED, FALSE_ERROR)]
        if bad:
            print("\nmisses and false errors:")
            for r in sorted(bad, key=lambda r: (r["class"], r["folder"])):
                tag = " (in known_misses.txt)" if r["known_miss"] else " (NOT in known_misses.txt)"
                print(f"  class {r['class']} {r['folder']}: {r['outcome']}{tag}: {r['detail']}")
        fixed = [r["folder"] for r in rows if r["known_miss"] and r["outcome"] in (CAUGHT, REVIEW, CLEAN)]
        if fixed:
            print("\nlisted in known_misses.txt but handled now (remove them):\n  " + "\n  ".join(fixed))
        secs = sorted(r["seconds"] for r in rows)
        if secs:
            p95 = secs[min(len(secs) - 1, int(0.95 * len(secs)))]
            print(f"\naudit time per folder: median {statistics.median(secs):.2f}s, p95 {p95:.2f}s, max {secs[-1]:.2f}s")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
