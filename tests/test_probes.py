"""Dynamic probes: the reference n-gram eval passes; the broken variants fail with positions and numbers."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.reproduce.instrument import instrument_source
from auditor.reproduce.main import ReproduceOptions, reproduce
from auditor.reproduce.plan import build_plan
from auditor.reproduce.probes import probe_record
from auditor.reproduce.sandbox import bwrap_works
from tests.reproduce_helpers import make_data, make_record

ROOT = Path(__file__).resolve().parents[1]
SCORERS = Path(__file__).parent / "fixtures" / "reproduce" / "scorers.py"
BROKEN = Path(__file__).parent / "fixtures" / "broken_ngram.py"
NGRAM = ROOT / "reference_impl" / "ngram.py"
SANDBOX = "bwrap" if bwrap_works()[0] else "none"


def _probe(path: Path, function: str, tmp_path: Path) -> dict[str, object]:
    out = probe_record(path, function=function, sandbox=SANDBOX, work=tmp_path)
    by_rule = {}
    for f in out.findings:
        by_rule[f.rule] = f
    return by_rule


def _passed(f) -> bool:
    return f.severity.value == "info" and f.message.startswith("pass")


def test_instrumentation_adds_hooks_after_the_accumulation_statement():
    src = ("def score(tokens, vocab_size):\n    nll_sum = 0.0\n    for i in range(len(tokens)):\n"
           "        nll_sum += -math.log(0.5)\n        counts[i] += 1\n    cache.update(tokens)\n    return nll_sum\n")
    inst = instrument_source(src)
    assert [(s.kind, s.line) for s in inst.sites] == [("score", 4), ("update", 5), ("update", 6)]
    lines = inst.source.splitlines()
    i = next(n for n, x in enumerate(lines) if x.strip() == "nll_sum += -math.log(0.5)")
    assert lines[i + 1].strip() == "__pgolf_probe__.scored(-math.log(0.5), {'i': i}, 4)"
    assert "__pgolf_probe__.call_update(cache.update, {}, 6, tokens)" in inst.source
    assert lines[0] == "import auditor.reproduce.probe_runtime as __pgolf_probe__"


@pytest.mark.skipif(not NGRAM.is_file(), reason="reference_impl/ngram.py not written yet")
def test_reference_ngram_passes_all_three(tmp_path):
    got = _probe(NGRAM, "score_tokens", tmp_path)
    assert set(got) == {"PROBE-SUFFIX-FLIP", "PROBE-NORMALIZATION", "PROBE-LEDGER"}
    assert all(_passed(f) for f in got.values()), [f.message for f in got.values()]
    assert "= 1.00000000" in got["PROBE-NORMALIZATION"].message


@pytest.mark.skipif(not BROKEN.is_file(), reason="tests/fixtures/broken_ngram.py not written yet")
def test_broken_target_in_key_fails_the_sweep(tmp_path):
    got = _probe(BROKEN, "score_tokens_target_in_key", tmp_path)
    f = got["PROBE-NORMALIZATION"]
    assert f.severity.value == "error"
    total = float(re.search(r"values = ([\d.]+), not 1", f.message).group(1))
    assert abs(total - 1.0) > 0.1
    assert f.evidence[-1].startswith("Σ over all 12 values") and f.line is not None
    assert _passed(got["PROBE-SUFFIX-FLIP"])  # it is causal, only not normalised


@pytest.mark.skipif(not BROKEN.is_file(), reason="tests/fixtures/broken_ngram.py not written yet")
def test_broken_two_pass_fails_suffix_flip_and_ledger(tmp_path):
    got = _probe(BROKEN, "score_tokens_two_pass", tmp_path)
    flip, ledger = got["PROBE-SUFFIX-FLIP"], got["PROBE-LEDGER"]
    assert flip.severity.value == "error" and "flipping token 48" in flip.message
    first = re.search(r"first: score #(\d+) \(in scoring order\), ([\d.]+) → ([\d.]+) nats", flip.message)
    assert first and int(first.group(1)) < 47 and first.group(2) != first.group(3)
    assert ledger.severity.value == "error" and "95 token(s) fed to a state update" in ledger.message
    assert "only 0 score(s) had been committed" in ledger.message


@pytest.mark.parametrize("function, failing", [
    ("score_tokens", set()),
    ("score_target_in_key", {"PROBE-NORMALIZATION"}),
    ("score_two_pass", {"PROBE-SUFFIX-FLIP", "PROBE-NORMALIZATION", "PROBE-LEDGER"}),
    ("score_update_first", {"PROBE-NORMALIZATION", "PROBE-LEDGER"}),
])
def test_our_bigram_scorers(tmp_path, function, failing):
    got = _probe(SCORERS, function, tmp_path)
    assert {r for r, f in got.items() if f.severity.value == "error"} == failing
    if "PROBE-LEDGER" in failing:
        assert re.search(r"position 1 fed to a state update \(event #1, line \d+\) when only 0 score", got["PROBE-LEDGER"].message)


def test_record_that_cannot_run_here_says_why(tmp_path):
    cuda = tmp_path / "cuda"
    cuda.mkdir()
    (cuda / "train_gpt.py").write_text("import torch\ndevice = torch.device('cuda')\n"
                                       "def eval_val(x):\n    val_loss_sum = 0\n    val_loss_sum += x.sum()\n")
    (f,) = probe_record(cuda, sandbox=SANDBOX, work=tmp_path / "w1").findings  # runs through the CPU layer, reaches no eval
    assert f.rule == "PROBE-NOT-RUN" and "ran through the CPU layer but none of its accumulation statements executed (lines 5)" in f.message
    nodata = tmp_path / "nodata"
    nodata.mkdir()
    (nodata / "train_gpt.py").write_text("def eval_val(x):\n    val_loss_sum = 0\n    val_loss_sum += x.sum()\n")
    (f,) = probe_record(nodata, sandbox=SANDBOX, work=tmp_path / "w2").findings  # toy data in place of the record's
    assert f.rule == "PROBE-NOT-RUN" and "none of its accumulation statements executed (lines 3)" in f.message
    (f,) = probe_record(nodata, sandbox=SANDBOX, work=tmp_path / "w3", whole_script=False).findings
    assert "no scorer module here" in f.message
    assert f.evidence == ["accumulation statement: line 3: val_loss_sum += x.sum()"]


def test_whole_script_probe_and_reproduce_probe(tmp_path, capsys):
    """A record's own eval run twice on CPU (the last val token flipped): the legal chunked bigram eval
    of our fixture passes through `pgolf reproduce --probe`; its two-pass variant fails with numbers."""
    data, tok = make_data(tmp_path / "d", n_val=5000)
    folder = make_record(tmp_path, data, tok, seeds=(1,))
    code = reproduce(ReproduceOptions(record=str(folder), run_dir=str(tmp_path / "run"), quiet=True, fmt="json", nproc=1,
                                      probe=True, no_sandbox=SANDBOX == "none", data=str(data), tokenizer=str(tok)))
    rec = json.loads(capsys.readouterr().out)["records"][0]
    assert code == 0, [f["message"] for f in rec["findings"]]
    flip = next(f for f in rec["findings"] if f["rule"] == "PROBE-SUFFIX-FLIP")
    assert flip["severity"] == "info" and "changed only the last target's score, in 1 eval pass(es); all other 4095 scores identical" in flip["message"]
    plan = build_plan(folder, env={"FIXTURE_TWO_PASS": "1"}, run_dir=tmp_path / "plan", sandbox=SANDBOX, data=str(data), tokenizer=str(tok))
    got = probe_record(folder, sandbox=SANDBOX, work=tmp_path / "w", plan=plan)
    flip = next(f for f in got.findings if f.rule == "PROBE-SUFFIX-FLIP")
    assert flip.severity.value == "error" and flip.file == "train_gpt.py"
    m = re.search(r"position 4096\) changed (\d+) score\(s\) of earlier targets \(first: batch (\d+), value (\d+) of 512: ([\d.]+) → ([\d.]+) nats", flip.message)
    assert m and int(m.group(1)) >= 1 and m.group(4) != m.group(5), flip.message


def test_probe_cli_exit_codes_and_json(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["probe", str(SCORERS), "--function", "score_tokens", "-f", "json"] + (["--no-sandbox"] if SANDBOX == "none" else []))
    assert ok.exit_code == 0, ok.output
    rec = json.loads(ok.output)["records"][0]
    assert rec["verdict"] == "pass" and rec["measured"]["probes"]
    bad = runner.invoke(app, ["probe", str(SCORERS), "--function", "score_two_pass"] + (["--no-sandbox"] if SANDBOX == "none" else []))
    assert bad.exit_code == 1 and "PROBE-SUFFIX-FLIP" in bad.output
