"""PROBE-LEDGER on whole scripts: the validation stream's positions are followed by value through torch ops
(probe_ledger_runtime, run in a child process: its torch function mode must not enter pytest's), and a score
committed after an optimizer step was fed its position is an error (probe_ledger.read_ledger)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from auditor.model import Severity
from auditor.reproduce.probe_ledger import read_ledger
from auditor.reproduce.probe_outcome import ProbeOutcome
from auditor.reproduce.sandbox import bwrap_works
from tests.helpers import PROBE_FIXTURE, probe_fixture_mode

REPO = Path(__file__).resolve().parents[1]
FIXTURE = PROBE_FIXTURE
SANDBOX = "bwrap" if bwrap_works()[0] else "none"

# A toy scorer's process: 50 val tokens, an embedding + head model, run with the ledger installed.
PRELUDE = """
import json, sys, torch
import torch.nn.functional as F
from auditor.reproduce import probe_ledger_runtime as L
L.install(sys.argv[1])
val = torch.tensor(list(range(3, 35)) + [1] * 17 + [7], dtype=torch.uint16)
emb, head = torch.nn.Embedding(40, 8), torch.nn.Linear(8, 40)
opt = torch.optim.SGD(list(emb.parameters()) + list(head.parameters()), lr=0.1)
def nll(x, y, red="none"):
    return F.cross_entropy(head(emb(x)).reshape(-1, 40), y.reshape(-1), reduction=red)
"""


def _ledger(tmp_path: Path, body: str) -> dict:
    torch = pytest.importorskip("torch")
    del torch
    spec = {"n_val": 50, "head": list(range(3, 35)), "last": 7, "out": str(tmp_path / "ledger.json"), "script": "scorer.py"}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "scorer.py").write_text(PRELUDE + textwrap.dedent(body))
    run = subprocess.run([sys.executable, str(tmp_path / "scorer.py"), str(tmp_path / "spec.json")], cwd=REPO, capture_output=True,
                         text=True, timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads((tmp_path / "ledger.json").read_text())


def _read(data: dict) -> tuple[ProbeOutcome, object]:
    res = ProbeOutcome("scorer.py")
    read_ledger(res, "scorer.py", data, 50)
    assert len(res.findings) == 1 and res.findings[0].rule == "PROBE-LEDGER"
    return res, res.findings[0]


def test_training_on_a_chunk_before_scoring_it_is_an_error_with_the_positions(tmp_path):
    data = _ledger(tmp_path, """
        toks = val[0:21].to(torch.int64)
        x = torch.zeros(1, 20, dtype=torch.int64); y = torch.zeros(1, 20, dtype=torch.int64)
        x[0, :20] = toks[:-1]; y[0, :20] = toks[1:]                     # copied into buffers: positions follow
        per_tok = nll(x, y).reshape(1, 20)
        slot = torch.zeros(1); slot[0] = per_tok[0, 5:20].mean()        # a reduced loss written into a slot
        opt.zero_grad(); slot.sum().backward(); opt.step()
        with torch.no_grad():
            scored = nll(x, y).reshape(1, 20)
            L.note_score(scored[0, 5:20].to(torch.float64).sum(), 99)
    """)
    assert data["seeded"] is True
    assert [(e["kind"], e["ranges"]) for e in data["events"]] == [("update", [[6, 21]]), ("score", [[6, 21]])]
    assert data["events"][0]["what"] == "optimizer step (SGD)" and data["events"][0]["line"] == 17
    res, f = _read(data)
    assert f.severity is Severity.ERROR and f.line == 17
    assert f.message.startswith("15 validation position(s) of the reported eval were scored after an optimizer step had been fed them: "
                                "first, positions 6–20 were fed to update #1 (optimizer step (SGD), line 17) and scored later at scorer.py:99")
    assert res.numbers["ledger"]["positions_fed"] == 15 and res.numbers["ledger"]["positions_scored"] == 15


def test_score_first_then_adapt_passes_though_later_windows_reuse_trained_context(tmp_path):
    # sliding windows: each window's context overlaps the chunk trained on, but only its new targets are scored
    data = _ledger(tmp_path, """
        for start in (0, 16, 32):
            toks = val[start:start + 17].to(torch.int64)
            ctx = max(0, start - 8)
            w = val[ctx:start + 17].to(torch.int64)
            with torch.no_grad():
                per_tok = nll(w[:-1][None], w[1:][None])
                L.note_score(per_tok[start - ctx:].sum().item(), 40)   # a float score: the positions of the last .item()
            opt.zero_grad(); nll(toks[:-1], toks[1:], "mean").backward(); opt.step()
    """)
    scores = [e["ranges"] for e in data["events"] if e["kind"] == "score"]
    assert scores == [[[1, 17]], [[17, 33]], [[33, 49]]]
    assert [e["ranges"] for e in data["events"] if e["kind"] == "update"] == [[[1, 17]], [[17, 33]], [[33, 49]]]
    _, f = _read(data)
    assert f.severity is Severity.INFO and f.message.startswith("pass: all 3 optimizer step(s) fed validation positions were fed only positions "
                                                                "already scored (48 positions fed, 48 scored by the reported eval)")


def test_a_training_loss_summed_for_the_log_is_not_a_committed_score(tmp_path):
    data = _ledger(tmp_path, """
        toks = val[0:21].to(torch.int64)
        loss = nll(toks[:-1], toks[1:], "mean")
        L.note_score(loss.detach(), 12)     # summed with gradients on: a training loss for the log
        opt.zero_grad(); loss.backward(); opt.step()
    """)
    assert [e["kind"] for e in data["events"]] == ["update"]
    _, f = _read(data)
    assert f.severity is Severity.INFO and f.message.startswith("ledger not run: 1 optimizer step(s) were fed validation positions, but no committed score")


def test_a_loss_computed_once_for_the_step_and_summed_under_no_grad_is_a_score(tmp_path):
    # score-first TTT computes the chunk's loss once with gradients, sums it as the score, then steps on it
    data = _ledger(tmp_path, """
        for start in (0, 20):
            toks = val[start:start + 21].to(torch.int64)
            per_tok = nll(toks[:-1], toks[1:])
            with torch.no_grad():
                L.note_score(per_tok.to(torch.float64).sum(), 5)
            opt.zero_grad(); per_tok.mean().backward(); opt.step()
        for start in (0, 20):                  # a second epoch scores the same chunks again, after training on them
            toks = val[start:start + 21].to(torch.int64)
            with torch.no_grad():
                L.note_score(nll(toks[:-1], toks[1:]).sum(), 9)
    """)
    assert [e["kind"] for e in data["events"]] == ["score", "update", "score", "update", "score", "score"]
    _, f = _read(data)
    assert f.severity is Severity.ERROR and f.message.startswith("40 validation position(s)") and "scored later at scorer.py:9" in f.message


def test_a_stream_sliced_in_numpy_is_said_to_be_unfollowed(tmp_path):
    data = _ledger(tmp_path, """
        import numpy as np
        arr = np.array(list(range(3, 35)) + [1] * 17 + [7], dtype=np.int64)   # the stream never enters torch whole
        x = torch.from_numpy(arr[0:20].copy()); y = torch.from_numpy(arr[1:21].copy())
        with torch.no_grad():
            L.note_score(nll(x, y, "sum"), 7)
    """)
    assert data["seeded"] is False and data["events"] == []
    _, f = _read(data)
    assert f.severity is Severity.INFO and "the validation stream never reached torch as one tensor" in f.message


def _events(*evs) -> dict:
    return {"events": list(evs), "seeded": True, "fed_unapplied": 0}


def test_one_boundary_position_is_a_warning_and_two_are_an_error():
    upd = {"kind": "update", "what": "optimizer step (Adam)", "ranges": [[1, 65]], "line": 30}
    _, f = _read(_events({"kind": "score", "ranges": [[1, 64]], "line": 9}, upd, {"kind": "score", "ranges": [[64, 128]], "line": 9}))
    assert f.severity is Severity.WARNING and f.message.startswith("1 validation position(s)") and "single boundary position" in f.message
    _, f = _read(_events({"kind": "score", "ranges": [[1, 63]], "line": 9}, upd, {"kind": "score", "ranges": [[63, 128]], "line": 9}))
    assert f.severity is Severity.ERROR and f.message.startswith("2 validation position(s)") and "positions 63–64 were fed to update #1" in f.message


def test_only_scores_from_the_last_scoring_call_on_count():
    upd = {"kind": "update", "what": "optimizer step (Adam)", "ranges": [[1, 129]], "line": 30}
    first = {"kind": "score", "ranges": [[1, 129]], "line": 9}
    # an earlier diagnostic eval scored everything, TTT adapted on it, then the reported eval scored it again
    _, f = _read(_events({"kind": "call", "function": "eval_val", "line": 5}, first, upd,
                         {"kind": "call", "function": "eval_val", "line": 5}, dict(first)))
    assert f.severity is Severity.ERROR and f.message.startswith("128 validation position(s)")
    res, f = _read(_events({"kind": "call", "function": "eval_val", "line": 5}, first, upd))
    assert f.severity is Severity.INFO and res.numbers["ledger"]["scope"] == "the last call of eval_val() on"


def test_scores_only_approximately_followed_make_a_warning_not_an_error():
    upd = {"kind": "update", "what": "optimizer step (Adam)", "ranges": [[1, 129]], "line": 30}
    _, f = _read(_events(upd, {"kind": "score", "ranges": [[1, 129]], "line": 9, "exact": False}))
    assert f.severity is Severity.WARNING


def test_a_malformed_ledger_raises_for_the_caller_to_report():
    with pytest.raises((KeyError, TypeError, ValueError)):
        read_ledger(ProbeOutcome("x"), "x", {"events": [{"kind": "update"}], "seeded": True}, 50)
    with pytest.raises((KeyError, TypeError, ValueError)):
        read_ledger(ProbeOutcome("x"), "x", {"events": "no", "seeded": True}, 50)


def _probe(tmp_path: Path, mode: str):
    return probe_fixture_mode(tmp_path, mode, SANDBOX)


def test_ttt_applied_before_the_scoring_call_is_caught_by_the_ledger_where_the_re_entered_flip_passes(tmp_path):
    got, n, text = _probe(tmp_path, "ttt_then_eval")
    assert got["PROBE-SUFFIX-FLIP"].severity is Severity.INFO  # the snapshot already holds the adapted model
    led = got["PROBE-LEDGER"]
    lines = text.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("def adapt"))
    step_line = next(i + 1 for i in range(start, len(lines)) if lines[i].strip() == "opt.step()")
    assert led.severity is Severity.ERROR and led.line == step_line
    assert "were fed to update #1 (optimizer step (AdamW), line" in led.message and "scored later at train_gpt.py:" in led.message
    assert n["ledger"]["updates_fed_val"] == 32  # 2 epochs × 16 chunks of 128 tokens
    assert n["mode"] == "re-entered"  # the ledger's error makes the whole-script complement unnecessary


def test_score_first_ttt_passes_every_probe_with_its_updates_counted(tmp_path):
    got, n, _ = _probe(tmp_path, "score_first_ttt")
    assert [f.rule for f in got.values() if f.severity is not Severity.INFO] == []
    led = got["PROBE-LEDGER"]
    assert led.message.startswith("pass: all ") and n["ledger"]["updates_fed_val"] >= 2
    assert n["ledger"]["positions_scored"] == 2048 and n["ledger"]["scope"] == "the last call of eval_val() on"


def test_update_lines_seen_in_the_instrumented_copy_are_reported_as_the_records_lines():
    from auditor.reproduce.instrument import instrument_source
    from auditor.reproduce.probe_ledger import line_map

    text = FIXTURE.read_text(encoding="utf-8")
    inst = instrument_source(text, reentry=True).source
    m = line_map(text, inst)
    orig = text.splitlines()
    copy = inst.splitlines()
    kept = next(i for i, x in enumerate(copy, 1) if x.startswith("def adapt"))  # an unchanged line, shifted by the header
    assert m[kept] != kept and orig[m[kept] - 1].startswith("def adapt")
    # a rewritten update site: call_update(opt.step, {…}, LINE) maps to the record's own opt.step() line
    copy_line = next(i for i, x in enumerate(copy, 1) if "call_update(opt.step" in x and i > kept)
    assert m[copy_line] != copy_line and orig[m[copy_line] - 1].strip() == "opt.step()"
    upd = {"kind": "update", "what": "optimizer step (SGD)", "ranges": [[1, 9]], "line": copy_line}
    _, f = _read_lines(_events(upd, {"kind": "score", "ranges": [[1, 9]], "line": 3}), m)
    assert f.line == m[copy_line] and f"line {m[copy_line]})" in f.message


def _read_lines(data: dict, lines: dict):
    res = ProbeOutcome("scorer.py")
    read_ledger(res, "scorer.py", data, 50, lines)
    return res, res.findings[0]
