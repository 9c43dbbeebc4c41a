"""Resource limits: per-folder time limit, dying workers, recursion, decompression bombs, huge
single-line files and report caps. Each hostile folder costs one line; the run always finishes."""
from __future__ import annotations

import base64
import bz2
import json
import lzma
import pickle
import time
import zlib
from functools import lru_cache
from pathlib import Path


from auditor.context import AuditOptions
from auditor.discover import discover
from auditor.evidence.code import read_code
from auditor.fs import MAX_DECOMPRESSED_BYTES
from auditor.model import Finding, Problem, RecordResult, Report, Severity
from auditor.report import render
from auditor.runner import Caps, audit_folders, cap_record, cap_report, sanitize
from tests.ci_helpers import clean_record
from tests.hardening_fixtures import assert_no_traceback, json_report, misbehaving_worker, run_pgolf
from tests.helpers import write_folder

MB = 1024 * 1024


def _folders(tmp_path: Path, names: list[str], code: dict[str, str] | None = None) -> Path:
    tree = tmp_path / "tree"
    for n in names:
        files = dict(clean_record())
        files.update((code or {}).get(n, {}))
        write_folder(tree, files, name=n)
    return tree


def test_hung_and_dying_workers_cost_one_line_each(tmp_path):
    names = ["a_ok", "b_hang", "c_ok", "d_segv", "e_exit", "f_ok"]
    tree = _folders(tmp_path, names)
    t0 = time.monotonic()
    # the limit counts from handing a folder to a worker, which may be one just started after a death: 10 s leaves
    # a loaded machine room to start it and audit an ok folder; the hung folder still ends at the limit, not in an hour
    run = audit_folders(discover([tree]), AuditOptions(), jobs=2, timeout_s=10, worker_target=misbehaving_worker)
    took = time.monotonic() - t0
    assert 10 <= took < 120, took
    recs = {Path(r.path).name: r for r in run.report.records}
    assert list(recs) == names  # discovery order, whatever finished first
    assert sorted(Path(p).name for p in run.failed) == ["b_hang", "d_segv", "e_exit"]
    msg = {n: recs[n].errors[-1].message for n in ("b_hang", "d_segv", "e_exit")}
    assert msg["b_hang"].startswith("audit stopped after 10 s (the per-folder time limit)")
    assert "died (SIGSEGV)" in msg["d_segv"]
    assert "exited with code 3" in msg["e_exit"]
    for n in ("b_hang", "d_segv", "e_exit"):
        assert recs[n].verdict == "needs-review" and len(recs[n].errors) == 1
    for n in ("a_ok", "c_ok", "f_ok"):
        assert recs[n].errors == [] and recs[n].measured.seeds, n


def test_parallel_and_serial_reports_are_identical(tmp_path):
    tree = _folders(tmp_path, [f"r{i}" for i in range(5)])
    reports = []
    for jobs in (1, 3):
        run = audit_folders(discover([tree]), AuditOptions(), jobs=jobs)
        for r in run.report.records:
            r.seconds = 0.0
        reports.append(json.loads(render(run.report, "json")))
    assert reports[0]["records"] == reports[1]["records"]


def _deep_sources() -> dict[str, str]:
    n = 100_000
    return {
        "deep_chain": "x = " + "+".join(["1"] * n) + "\n",
        "deep_parens": "x = " + "(" * n + "1" + ")" * n + "\n",
        "deep_unary": "x = " + "-" * n + "1\n",
        "deep_lambda": "x = " + "lambda: " * n + "1\n",
    }


def test_deeply_nested_code_and_huge_lines_do_not_take_the_run_down(tmp_path):
    code = {name: {"train_gpt.py": "import os\n" + src} for name, src in _deep_sources().items()}
    code["huge_line_log"] = {"train_seed1.log": "step:1/2 " + "x" * (12 * MB) + " val_loss:2.0 val_bpb:1.2\n"}
    code["over_cap_log"] = {}
    names = sorted(code) + ["zz_ok"]
    tree = _folders(tmp_path, names, code)
    with open(tree / "records/track_10min_16mb/over_cap_log/train_seed2.log", "wb") as fh:
        fh.truncate(100 * MB)  # a 100 MB single "line" (sparse: costs no disk)
    proc = run_pgolf(["audit", "records", "--jobs", "2", "-f", "json", "--fail-on", "never"], tree,
                     PGOLF_FOLDER_TIMEOUT="60")
    assert_no_traceback(proc)
    report = json_report(proc)
    recs = {Path(r["path"]).name: r for r in report["records"]}
    assert sorted(recs) == sorted(names)
    assert recs["zz_ok"]["errors"] == []
    over = [e["message"] for e in recs["over_cap_log"]["errors"]]
    assert any("over the 52,428,800-byte cap; skipped" in m for m in over), over
    for name in _deep_sources():  # refused cleanly: a parse problem, never a silent pass
        rec = recs[name]
        assert rec["verdict"] != "pass", name


@lru_cache(maxsize=None)
def _bz2_stream(mb: int) -> bytes:
    return bz2.compress(b"\0" * (mb * MB), 9)


def _wrapper(call: str, payload: bytes) -> str:
    return f"import lzma, zlib, bz2, base64, codecs\nexec({call.format(repr(base64.b85encode(payload).decode()))})\n"


def test_capped_decompressors_refuse_bombs(tmp_path):
    lz = lzma.compress(b"\0" * (MAX_DECOMPRESSED_BYTES + 8 * MB), preset=0)
    zl = zlib.compress(b"\0" * (MAX_DECOMPRESSED_BYTES + 8 * MB), 9)
    files = {
        "train_gpt.py": _wrapper("lzma.decompress(base64.b85decode({}))", lz),
        "zlib_wrapper.py": _wrapper("zlib.decompress(base64.b85decode({}))", zl),
    }
    folder = write_folder(tmp_path, files)
    bundle = read_code(folder, folder, sorted(files), None)
    why = [u[2] for u in bundle.undecodable]
    assert any("decompresses to more than 64 MB; not expanded" in w for w in why), why
    assert all(f.size_bytes <= MAX_DECOMPRESSED_BYTES for f in bundle.files)


def _codecs_bomb(copies: int, mb: int) -> str:
    # bz2.decompress (and so codecs.decode(..., "bz2")) reads concatenated streams: N small streams, N×mb out
    return _wrapper("codecs.decode(base64.b85decode({}), 'bz2')", _bz2_stream(mb) * copies)


def test_codecs_bomb_is_contained_by_the_worker_memory_cap(tmp_path):
    """A 2 GB bz2 bomb behind codecs.decode: the folder is reported, the others are audited."""
    tree = _folders(tmp_path, ["a_bomb", "b_ok"], {"a_bomb": {"train_gpt.py": _codecs_bomb(200, 10)}})
    run = audit_folders(discover([tree]), AuditOptions(), jobs=2, timeout_s=60, memory_mb=400)
    recs = {Path(r.path).name: r for r in run.report.records}
    assert recs["b_ok"].errors == []
    bomb = recs["a_bomb"]
    said = " ".join([p.message for p in bomb.errors] + [f.message for f in bomb.findings])
    assert bomb.verdict != "pass" and any(w in said for w in ("not expanded", "memory", "MemoryError")), said


def test_codecs_decode_is_capped_in_the_code_reader(tmp_path):
    folder = write_folder(tmp_path, {"train_gpt.py": _codecs_bomb(8, 10)})  # 80 MB > the 64 MB cap
    bundle = read_code(folder, folder, ["train_gpt.py"], None)
    assert any("not expanded" in u[2] for u in bundle.undecodable), bundle.undecodable


def _big_record() -> RecordResult:
    ev = [("e" * 10_000) + str(i) for i in range(100)]
    findings = [Finding("RULE-A", Severity.ERROR, "train_gpt.py", i, "m" * 50_000, evidence=list(ev), path=["p"] * 500)
                for i in range(700)]
    findings += [Finding("RULE-B", Severity.WARNING, "train_gpt.py", i, "w", evidence=[]) for i in range(10)]
    return RecordResult(path="records/x", findings=findings, errors=[Problem(f"f{i}", "x" * 9000) for i in range(500)])


def test_report_caps_bound_every_field():
    caps = Caps()
    rec = cap_record(_big_record(), caps)
    by_rule = {r: sum(f.rule == r for f in rec.findings) for r in ("RULE-A", "RULE-B")}
    assert by_rule == {"RULE-A": caps.findings_per_rule, "RULE-B": 10}
    for f in rec.findings:
        assert len(f.message) <= caps.text_chars and len(f.path) <= caps.path_steps
        assert len(f.evidence) <= caps.evidence_lines + 1 and all(len(e) <= caps.evidence_chars for e in f.evidence)
    assert rec.findings[0].evidence[-1] == "… 80 more lines not shown"
    assert len(rec.errors) == caps.errors_per_record + 2
    assert rec.errors[-1].message.startswith("650 more findings not shown") and "RULE-A ×650" in rec.errors[-1].message
    again = pickle.loads(pickle.dumps(rec))  # capped in a worker, capped again by the parent: no change
    assert cap_record(again, caps).errors == rec.errors
    report = cap_report(Report(records=[rec], errors=[Problem("x", "y")] * 5000), caps)
    assert len(report.errors) == caps.report_errors + 1
    assert len(render(report, "json")) < 2 * MB


def test_human_formats_are_stripped_of_terminal_controls():
    rec = RecordResult(path="records/\x1b[2Jclear\nnext",
                       findings=[Finding("R", Severity.ERROR, "a\nb.py", 1, "msg \x1b]0;t\x07", evidence=["\x1b[31mred\u202e"])],
                       errors=[Problem("x\udcff.log", "bad\rline")])
    report = sanitize(Report(records=[rec]))
    r = report.records[0]
    assert r.path == "records/\\x1b[2Jclear\\nnext"
    assert r.findings[0].file == "a\\nb.py" and r.findings[0].evidence == ["\\x1b[31mred\\u202e"]
    assert r.findings[0].message == "msg \\x1b]0;t\\x07"
    assert r.errors[0].file == "x\\xff.log" and r.errors[0].message == "bad\\x0dline"
    assert r.findings[0].severity is Severity.ERROR
