"""Probes on a CUDA-shaped record without a GPU: our own record-shaped fixture (tests/fixtures/probes/
cuda_record.py: device="cuda", .cuda(), autocast("cuda"), NCCL, flash-attn v3, torch.compile) runs
through the CPU layer in the sandbox, at toy size, on a toy tokenizer and shards of its vocabulary."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from auditor.reproduce.probes import probe_record
from auditor.reproduce.sandbox import bwrap_works

FIXTURE = Path(__file__).parent / "fixtures" / "probes" / "cuda_record.py"
SANDBOX = "bwrap" if bwrap_works()[0] else "none"


def _record(tmp_path: Path, mode: str) -> Path:
    folder = tmp_path / "records" / "track_10min_16mb" / f"2026-11-01_{mode}"
    folder.mkdir(parents=True)
    text = FIXTURE.read_text(encoding="utf-8").replace('MODE = "legal"', f'MODE = "{mode}"')
    (folder / "train_gpt.py").write_text(text, encoding="utf-8")
    return folder


def _probe(tmp_path: Path, mode: str):
    out = probe_record(_record(tmp_path, mode), sandbox=SANDBOX, work=tmp_path / "work", timeout_s=240, tok_cache=tmp_path / "tok")
    return {f.rule: f for f in out.findings}, out


def test_the_fixture_refuses_to_run_on_a_cpu_without_the_layer(tmp_path):
    folder = _record(tmp_path, "legal")
    r = subprocess.run([sys.executable, str(folder / "train_gpt.py")], cwd=folder, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1  # an uncaught exception, not a crash or a kill
    assert "flash_attn_interface" in r.stderr or "CUDA is required" in r.stderr


def test_legal_cuda_record_runs_through_the_cpu_layer_and_passes_the_flip(tmp_path):
    got, out = _probe(tmp_path, "legal")
    flip = got["PROBE-SUFFIX-FLIP"]
    assert flip.severity.value == "info" and flip.message.startswith("pass"), flip.message
    numbers = out.numbers["train_gpt.py"]
    assert numbers["cpu_layer"] is True
    assert numbers["toy_env"]["ITERATIONS"] == "2" and numbers["toy_env"]["TRAIN_SEQ_LEN"] == "128"
    assert numbers["changed_last_target"] == 1  # the last target's own score, and nothing else


def test_two_pass_cuda_record_is_flagged_by_the_flip_with_numbers(tmp_path):
    got, _ = _probe(tmp_path, "two_pass")
    flip = got["PROBE-SUFFIX-FLIP"]
    assert flip.severity.value == "error", flip.message
    assert "flipping the last val token (position 2048)" in flip.message and "nats" in flip.message
    assert flip.evidence and "→" in flip.evidence[0]


def test_ttt_before_score_cuda_record_is_flagged_by_the_flip(tmp_path):
    got, out = _probe(tmp_path, "ttt_before_score")
    n = out.numbers["train_gpt.py"]
    assert got["PROBE-SUFFIX-FLIP"].severity.value == "error", got["PROBE-SUFFIX-FLIP"].message
    # the ledger of the same run: an eval inside main() has no scoring call to scope to, so the whole run counts
    assert got["PROBE-LEDGER"].severity.value == "error", got["PROBE-LEDGER"].message
    assert n["ledger"]["scope"] == "the whole run" and n["ledger"]["updates_fed_val"] >= 1


def test_target_in_key_is_causal_so_the_flip_passes_and_the_sweep_says_it_did_not_run(tmp_path):
    """Target-in-key breaks normalisation, not causality: only the vocabulary sweep can show it, and on a whole
    script the sweep is not run (one full run per vocabulary entry); the probe says so instead of passing."""
    got, _ = _probe(tmp_path, "target_in_key")
    assert got["PROBE-SUFFIX-FLIP"].message.startswith("pass")
    # the whole-script run and its flip give two tokens at the last position: too few to prove this one broken
    assert got["PROBE-NORMALIZATION"].severity.value == "info"
    assert got["PROBE-NORMALIZATION"].message.startswith("pass (partial sweep from the whole-script runs): 2 of 64 tokens")
    assert got["PROBE-LEDGER"].message.startswith("pass: no optimizer step was fed validation tokens")


def test_a_count_ratio_is_proved_unnormalized_by_the_two_tokens_the_whole_script_runs_already_score(tmp_path):
    got, out = _probe(tmp_path, "count_ratio")
    n = out.numbers["train_gpt.py"]
    norm = got["PROBE-NORMALIZATION"]
    assert norm.severity.value == "error" and n["mode"] == "whole script", norm.message
    assert n["two_token_sum"]["sum_p"] > 1.0 and n["two_token_sum"]["position"] == 2048
    assert norm.message.startswith("at the last position (2048) of the reported eval pass, 2 of 64 tokens already carry Σ p = ")
    assert norm.evidence[2].startswith("pass mean ") and "≈ final val_loss" in norm.evidence[2]


def test_triton_import_without_triton_is_the_reason(tmp_path):
    pytest.importorskip("sentencepiece")
    folder = _record(tmp_path, "legal")
    p = folder / "train_gpt.py"
    p.write_text("import triton\n" + p.read_text(encoding="utf-8"), encoding="utf-8")
    try:
        import triton  # noqa: F401

        pytest.skip("triton is installed here: its interpreter runs the kernels")
    except ImportError:
        pass
    out = probe_record(folder, sandbox=SANDBOX, work=tmp_path / "work", timeout_s=60)
    (f,) = [f for f in out.findings if f.rule == "PROBE-NOT-RUN"]
    assert f.line == 1 and "imports triton, which is not installed here" in f.message


def test_legal_sliding_eval_whose_tail_windows_rescore_the_last_target_passes(tmp_path):
    """Real merged records' sliding evals score the last targets in two tail windows: both changes are the
    last value of their window, not a read of the future."""
    got, out = _probe(tmp_path, "sliding")
    flip = got["PROBE-SUFFIX-FLIP"]
    assert flip.message.startswith("pass"), flip.message
    assert out.numbers["train_gpt.py"]["changed_last_target"] >= 2
