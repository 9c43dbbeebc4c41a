"""Batch mode: a tree of many record folders audited with parallel workers gives the same JSON
document as one worker (apart from timings), and progress never leaks into stdout."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.ci_helpers import bad_record, clean_record
from tests.helpers import write_folder

TIMING_KEYS = {"seconds", "elapsed", "elapsed_s", "duration_s", "wall_s", "started", "finished"}


def _strip_timing(x):
    if isinstance(x, dict):
        return {k: _strip_timing(v) for k, v in x.items() if k not in TIMING_KEYS}
    if isinstance(x, list):
        return [_strip_timing(v) for v in x]
    return x


def _tree(root):
    """30 folders of different kinds: clean, failing, broken JSON, odd names, two tracks."""
    kinds = []
    for i in range(30):
        track = "track_10min_16mb" if i % 3 else "track_non_record_16mb"
        name = f"2026-03-{i % 28 + 1:02d}_Run {i}" if i % 5 == 0 else f"2026-03-{i % 28 + 1:02d}_Run_{i}"
        if i % 4 == 0:
            files = bad_record()
        elif i % 7 == 0:
            files = {**clean_record(), "submission.json": '{"author": "t", "val_bpb": 1.2,,}\n'}
        elif i % 9 == 0:
            files = {k: v for k, v in clean_record().items() if not k.endswith(".log")}
        else:
            files = clean_record(f" #{i}")
        write_folder(root, files, track=track, name=name)
        kinds.append(name)
    return kinds


def _audit(root, jobs):
    proc = subprocess.run([sys.executable, "-m", "auditor", "audit", "records", "--jobs", str(jobs), "--format", "json"],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr  # a third of the folders break a rule (bad_record): exit 1
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout), proc  # stdout is one JSON document: no progress output mixed in


def test_jobs_2_equals_jobs_1(tmp_path):
    names = _tree(tmp_path)
    one, p1 = _audit(tmp_path, 1)
    two, p2 = _audit(tmp_path, 2)
    assert len(one["records"]) == 30 and sorted(r["path"].rsplit("/", 1)[1] for r in one["records"]) == sorted(names)
    assert p1.returncode == p2.returncode == 1
    assert _strip_timing(one) == _strip_timing(two)
    verdicts = {r["verdict"] for r in one["records"]}
    assert {"fail", "pass"} <= verdicts  # the tree really mixes outcomes
