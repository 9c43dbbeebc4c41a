"""Trust boundaries of the batch audit: what a worker sends back to the main process is bounded, so
huge inputs cannot grow the main process (issue: two 16 MB submission.json files took it to 4.9 GB)."""
from __future__ import annotations

import json
import pickle
import subprocess
import sys

from auditor.evidence.submission import MAX_SUBMISSION_BYTES, cap_claims, parse_claims_text
from auditor.limits import MAX_ANSWER_BYTES
from auditor.model import Finding, RecordResult, Severity
from auditor.worker import _answer
from tests.ci_helpers import clean_record
from tests.hardening_fixtures import assert_no_traceback, clean_env, run_pgolf
from tests.helpers import write_folder

# ~18 MB of distinct numbers (the shape that took the main process to 4.9 GB)
BIG = '{"author": "a", "github_id": "a", "val_bpb": 1.2, "x": [' + ", ".join(f"{1 + i * 1e-7:.7f}" for i in range(1_700_000)) + "]}\n"
MEASURE = ("import resource, sys\nfrom auditor.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
           # VmHWM, the peak of this process's own memory: Linux carries ru_maxrss across exec, so a pgolf
           # started from a big parent (a pytest worker) would report the parent's peak
           "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
           "print('MAXRSS_KB', hwm, file=sys.stderr)\n")


def test_submission_json_too_large_is_one_line(tmp_path):
    """Item 6: a 16 MB submission.json of numbers is refused with a "too large" line, not parsed."""
    assert len(BIG) > 16_000_000 > MAX_SUBMISSION_BYTES
    folder = write_folder(tmp_path, {**clean_record(), "submission.json": BIG})
    proc = run_pgolf(["audit", str(folder), "--format", "json"], tmp_path, module=True)
    assert_no_traceback(proc)
    rec = json.loads(proc.stdout)["records"][0]
    lines = [e for e in rec["errors"] if e["file"] == "submission.json"]
    assert lines and "too large" in lines[0]["message"] and "not read" in lines[0]["message"], rec["errors"]
    assert rec["verdict"] != "pass"


def test_two_huge_folders_keep_the_main_process_small(tmp_path):
    """Item 6: with --jobs 2 the parsed JSON came back from the workers uncapped (main process 4.9 GB, both passed)."""
    for n in (1, 2):
        write_folder(tmp_path, {**clean_record(), "submission.json": BIG}, name=f"2026-01-0{n}_Big")
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-P", "-c", MEASURE, "audit", str(tmp_path / "records"), "--jobs", "2",
                           "--format", "json", "-o", str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=900,
                          env=clean_env(PGOLF_FOLDER_TIMEOUT="600"))  # a slow machine must not end it by a time-out
    assert_no_traceback(proc)
    kb = int(next(x for x in proc.stderr.splitlines() if x.startswith("MAXRSS_KB")).split()[1])
    assert kb < 512 * 1024, f"main process peaked at {kb // 1024} MiB"
    doc = json.loads(out.read_text())
    assert len(doc["records"]) == 2 and all(r["verdict"] != "pass" for r in doc["records"])


def test_claims_are_capped_before_they_leave_the_worker():
    obj = {"val_bpb": 1.2, "author": "a", "x": [1.5] * 60_000, "seeds": list(range(3000)),
           "seed_results": {str(s): {"val_bpb": 1.2, "trace": [0.1] * 10} for s in range(1500)}}
    c = cap_claims(parse_claims_text(json.dumps(obj)))
    assert c.val_bpb == 1.2 and c.author == "a"
    assert "x" not in c.raw and c.raw["_pgolf_truncated"].endswith("only short top-level values kept")
    assert len(c.seeds) == 1000 and len(c.seed_results) == 1000
    assert all("trace" not in r for r in c.seed_results.values())
    assert len(pickle.dumps(c)) < 1_000_000
    assert c.repairs[-1].startswith("report cap: kept out of the report: the parsed submission.json")
    small = parse_claims_text('{"val_bpb": 1.2, "seeds": [1, 2, 3]}')
    raw = dict(small.raw)
    assert cap_claims(small).raw == raw and not any("report cap" in r for r in small.repairs)


def test_a_worker_answer_over_the_cap_is_one_line():
    rec = RecordResult(path="x", findings=[Finding(rule="R", severity=Severity.ERROR, file="f", line=1, message="m" * 100,
                                                   evidence=[f"{i:08d}" + "e" * 1000 for i in range(MAX_ANSWER_BYTES // 1000 + 10)])])
    index, got, err, timings = pickle.loads(_answer(3, rec, None, []))
    assert index == 3 and got is None and "over the" in err and "cap on what a worker sends back" in err
    ok = RecordResult(path="y")
    assert pickle.loads(_answer(4, ok, None, []))[1].path == "y"
