"""Mutation testing of pgolf's core with mutmut, one module at a time with the tests that guard it.

    python benchmarks/mutation.py                      # every target below (about 20-30 min on 2 cores)
    python benchmarks/mutation.py stats policy         # some targets
    python benchmarks/mutation.py --list               # the targets and their tests

Each target is mutated in a scratch copy of the working tree (tracked and untracked files, never the
tree itself), so a run never leaves mutants behind. Prints killed/survived per module and the surviving
mutants with their diff; `--min-score` makes it exit 1 below a kill ratio. Equivalent mutants that
cannot be killed are listed in EQUIVALENT with the reason.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# module → the tests that state the rules it implements
TARGETS: dict[str, tuple[str, list[str]]] = {
    "stats": ("auditor/stats.py", ["tests/test_stats.py", "tests/test_stats_exact.py", "tests/test_boundaries.py"]),
    "policy": ("auditor/policy.py", ["tests/test_verdict_policy.py"]),
    "measure": ("auditor/measure.py", ["tests/test_final_score_selection.py", "tests/test_artifact_bytes_measured.py"]),
    "artifact": ("rules/artifact_16mb.py", ["tests/test_boundaries.py", "tests/test_artifact_bytes_measured.py", "tests/test_artifact.py"]),
    "time": ("rules/time_train_600.py", ["tests/test_boundaries.py", "tests/test_train_time_cap.py"]),
    "waivers": ("auditor/waivers.py", ["tests/test_waiver_matching.py", "tests/test_waivers.py", "tests/test_waivers_rules.py"]),
    "seeds": ("rules/stats_seeds.py", ["tests/test_seed_count_rule.py"]),
    "measure_bytes": ("auditor/measure_bytes.py", ["tests/test_artifact_bytes_measured.py", "tests/test_boundaries.py"]),
    "selectors": ("auditor/selectors.py", ["tests/test_rule_selection_exact.py"]),
    "logs": ("auditor/evidence/logs.py", ["tests/test_final_score_selection.py", "tests/test_log_parser.py"]),
    "cli_audit": ("auditor/cli_audit.py", ["tests/test_cli_audit_wiring.py", "tests/test_cli_audit_run.py"]),
}

# target → mutant-name globs (fnmatch) when only part of a big module is in scope; the rest is not mutated
ONLY: dict[str, list[str]] = {
    # the functions that pick a run's final score (scoring label, the last line after training)
    "logs": ["auditor.evidence.logs.x_pick_final__mutmut_*", "auditor.evidence.logs.x_is_scoring_label__mutmut_*",
             "auditor.evidence.logs.x__finish_run__mutmut_*"],
    # which findings a suppression or a waiver entry covers and where the file is found; the base-revision
    # copy for CI (reviewer_side, _from_base_revision) is git plumbing, guarded by tests/test_trust_waivers.py
    "waivers": [f"auditor.waivers.x_{f}__mutmut_*" for f in ("parse_suppressions", "_rule_matches", "find_waiver_file", "_parse_waivers",
                                                             "waiver_applies_to_folder", "_apply", "collect")],
    # the wiring of options into the audit (progress bar and stdout plumbing are out of scope)
    "cli_audit": ["auditor.cli_audit.x_run_audit__mutmut_*"],
}

# mutant name → why it cannot change behaviour
EQUIVALENT: dict[str, str] = {
    "auditor.stats.x_compute__mutmut_20": "RULEBOOKS[+1] is RULEBOOKS[-1] while there are two rulebooks (the latest is meant)",
    "auditor.policy.x_apply_reachability__mutmut_3": "`>=` also lowers INFO to INFO: no change",
    "auditor.policy.x_apply_reachability__mutmut_7": "`>=` also lowers WARNING to WARNING: no change",
    "rules.stats_seeds.xǁStatsSeedsǁcheck__mutmut_11": "the values of `logged` are never read, only its keys (which seeds a log shows)",
    "rules.stats_seeds.xǁStatsSeedsǁcheck__mutmut_13": "the values of `logged` are never read, only its keys (which seeds a log shows)",
    "rules.stats_seeds.xǁStatsSeedsǁcheck__mutmut_18": "the default name is never shown: seeds are claimed only by a submission file, so claims.file is "
                                                     "set whenever the message that uses it is built",
    "rules.stats_seeds.xǁStatsSeedsǁcheck__mutmut_19": "the default name is never shown: seeds are claimed only by a submission file, so claims.file is "
                                                     "set whenever the message that uses it is built",
    "auditor.measure_bytes.x_artifact_bytes__mutmut_85": "`bytes_code or 1` for `or 0` inside `if ev.claims.bytes_code`: the `or` is never reached",
    "auditor.measure_bytes.x__size__mutmut_9": "2 << 40 for 1 << 40: only a file between 1 and 2 TiB tells them apart (not equivalent in principle; "
                                           "no record or test file comes near, and the cap only keeps a size from being refused)",
    "auditor.evidence.logs.x_pick_final__mutmut_12": "a final already ending in _exact then looks for a `_exact_exact` twin, finds none and "
                                                    "returns itself: the same line either way",
    "auditor.evidence.logs.x_pick_final__mutmut_13": "a final already ending in _exact then looks for a `_exact_EXACT`-style twin, finds none and "
                                                    "returns itself: the same line either way",
    "auditor.evidence.logs.x_pick_final__mutmut_24": "`val_bpb or 1`: every candidate has a val_bpb (the filter above), so the `or` is never taken",
    "auditor.evidence.logs.x_pick_final__mutmut_26": "`val_bpb or 1`: every candidate has a val_bpb (the filter above), so the `or` is never taken",
    "auditor.measure_bytes.x__size__mutmut_10": "1 << 41 for 1 << 40: as _9, only a file between 1 and 2 TiB tells them apart",
    "auditor.measure_bytes.x__model_file__mutmut_11": "rsplit('/') without maxsplit: the last path component is the same either way",
    "auditor.measure_bytes.x__model_file__mutmut_14": "rsplit('/', 2): the last path component is the same either way",
    "auditor.measure_bytes.x_artifact_bytes__mutmut_108": "the default name is never used: claimed bytes come only from a submission file, so "
                                                          "claims.file is set whenever this seed is built",
    "auditor.measure_bytes.x_artifact_bytes__mutmut_109": "the default name is never used (see _108)",
    "auditor.measure_bytes.x_artifact_bytes__mutmut_110": "the default name is never used (see _108)",
    "auditor.measure_bytes.x_artifact_bytes__mutmut_128": "ArtifactFacts.claimed_code is read by nothing (no rule, no renderer): a dead field",
    "auditor.evidence.logs.x__finish_run__mutmut_9": "`>=` for `>` against the line that ends training: that line is the stop line or a training "
                                                     "step line, and an eval parsed from a step line has a `step:` label, excluded on the same line",
    "rules.time_train_600.xǁTimeTrain600ǁcheck__mutmut_17": "`cap >= 0` for `cap > 0`: a zero cap is already falsy in `ws and cap`, so only a negative cap "
                                                          "reaches it, and then ws × cap is negative: never over 4800 either way",
    "rules.time_train_600.xǁTimeTrain600ǁcheck__mutmut_20": "`>=` for `>` against 4800 + 1e-6: differs only when ws × cap equals 4800.000001 exactly, which "
                                                          "no integer world size times a logged cap produces; the 1e-6 is the float tolerance itself",
    # waivers: `options` is always an AuditOptions (a dataclass with both fields), so a getattr default is never used
    "auditor.waivers.x_find_waiver_file__mutmut_6": "getattr(options, 'waivers_file') without a default: AuditOptions always has the field",
    "auditor.waivers.x_collect__mutmut_12": "getattr(options, 'extra') without a default: AuditOptions always has the field",
    "auditor.waivers.x_collect__mutmut_17": "extra.get(NOTES_KEY, None) or []: the `or []` gives the same empty list",
    "auditor.waivers.x_collect__mutmut_19": "extra.get(NOTES_KEY) or []: the `or []` gives the same empty list",
    "auditor.waivers.x__parse_waivers__mutmut_22": "'UTF-8-SIG' for 'utf-8-sig': Python's codec names ignore case",
    "auditor.waivers.x_waiver_applies_to_folder__mutmut_6": "rstrip(None) for rstrip('/'): the folder is already stripped of "
                                                             "blanks when parsed, and normpath drops a trailing slash",
    # `have` in _apply only saves parsing a code file twice: a code file left out of it is parsed again and gives the
    # same suppressions (its own, already in the list, found first) or none
    **{f"auditor.waivers.x__apply__mutmut_{n}": "`have` only saves re-parsing: a code file missing from it is parsed again "
       "and yields the same suppressions, found after the identical ones already listed" for n in (6, 7, 9, 12, 13, 14)},
    "auditor.waivers.x__apply__mutmut_20": "`f.file or f.line`: also reads files that findings without a line point at; their "
                                           "suppressions can only match findings with a line, whose files are read either way",
    # cli_audit: the encode/decode after rendering is a second guard; codec names ignore case
    **{f"auditor.cli_audit.x_run_audit__mutmut_{n}": "the error handler of the second guard against lone surrogates: no "
       "renderer's output holds one (each ends in C.printable or the human-format sanitiser, which escape them; checked "
       "with an undecodable folder and file name in every format)" for n in (135, 138, 139)},
    **{f"auditor.cli_audit.x_run_audit__mutmut_{n}": "'UTF-8' for 'utf-8': Python's codec names ignore case" for n in (137, 141, 148)},
}

_RESULT = re.compile(r"^\s*(\S+): (\w[\w ]*)$")


def scratch_copy(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = ROOT / rel
        if src.is_file() and not src.is_symlink():
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, out)
    shared = ROOT.parent / "shared"
    if shared.is_dir() and not (dest.parent / "shared").exists():
        (dest.parent / "shared").symlink_to(shared)  # the tests find ../shared next to the checkout


def run_target(name: str, children: int, diffs: bool = True) -> dict:
    module, tests = TARGETS[name]
    tests = [t for t in tests if (ROOT / t).is_file()]
    with tempfile.TemporaryDirectory(prefix=f"pgolf-mut-{name}-") as tmp:
        work = Path(tmp) / "pgolf"
        work.mkdir()
        scratch_copy(work)
        with open(work / "pyproject.toml", "a", encoding="utf-8") as fh:
            fh.write(f'\n[tool.mutmut]\nsource_paths = ["{module}"]\npytest_add_cli_args_test_selection = {tests!r}\n'
                     'also_copy = ["auditor", "rules", "reference_impl", "examples", "tests"]\n'.replace("'", '"'))
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        t0 = time.monotonic()
        only = ONLY.get(name, [])
        subprocess.run(["mutmut", "run", "--max-children", str(children), *only], cwd=work, env=env, capture_output=True)
        wall = time.monotonic() - t0
        res = subprocess.run(["mutmut", "results", "--all", "true"], cwd=work, capture_output=True, text=True).stdout
        status = {}
        for line in res.splitlines():
            m = _RESULT.match(line)
            if m and (not only or any(fnmatch.fnmatch(m.group(1), g) for g in only)):
                status[m.group(1)] = m.group(2).strip()
        survivors = {k: "" for k, v in status.items() if v == "survived" and k not in EQUIVALENT}
        for k in survivors if diffs else ():
            diff = subprocess.run(["mutmut", "show", k], cwd=work, capture_output=True, text=True).stdout
            survivors[k] = "\n".join(l for l in diff.splitlines() if l[:2] in ("- ", "+ "))
    counted = {k: v for k, v in status.items() if k not in EQUIVALENT}
    killed = sum(1 for v in counted.values() if v in ("killed", "timeout"))
    kinds: dict[str, int] = {}
    for v in counted.values():
        kinds[v] = kinds.get(v, 0) + 1
    # a mutant "killed" by a timeout only ran past mutmut's limit: on a loaded machine that can be the load, so they
    # are listed by name to be checked by hand
    timeouts = sorted(k for k, v in counted.items() if v == "timeout")
    return {"module": module, "tests": tests, "killed": killed, "total": len(counted), "wall_s": wall, "survivors": survivors,
            "kinds": kinds, "timeouts": timeouts}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="*", help=f"any of {', '.join(TARGETS)} (default: all)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--children", type=int, default=2)
    ap.add_argument("--no-diff", action="store_true", help="list surviving mutants by name only (faster)")
    ap.add_argument("--min-score", type=float, default=0.0, help="exit 1 when a module's kill ratio is below this")
    args = ap.parse_args()
    if args.list:
        for k, (mod, tests) in TARGETS.items():
            print(f"{k:10} {mod:32} {' '.join(tests)}")
        return 0
    if shutil.which("mutmut") is None:
        print("mutmut is not installed: pip install mutmut==3.8.1", file=sys.stderr)
        return 2
    bad = [t for t in args.targets if t not in TARGETS]
    if bad:
        print(f"unknown target(s) {', '.join(bad)}; choose from {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    worst = 1.0
    for name in args.targets or list(TARGETS):
        r = run_target(name, args.children, diffs=not args.no_diff)
        ratio = r["killed"] / r["total"] if r["total"] else 1.0
        worst = min(worst, ratio)
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(r["kinds"].items()))
        print(f"{name:10} {r['module']:32} killed {r['killed']}/{r['total']} ({ratio:.0%}) in {r['wall_s']:.0f} s  [{kinds}]")
        if r["timeouts"]:
            print("  timed out (counted as killed): " + " ".join(k.rsplit(".", 1)[-1] for k in r["timeouts"]))
        for k, diff in r["survivors"].items():
            print(f"  survived {k}\n" + "\n".join("    " + l for l in diff.splitlines()))
        sys.stdout.flush()
    return 1 if worst < args.min_score else 0


if __name__ == "__main__":
    sys.exit(main())
