"""PR #864 (two-pass n-gram backoff; maintainer ruling: illegal) through the CPU layer at toy size, in
the sandbox: its final scoring function eval_val_ngram() is re-entered on mutated val streams, and both
the flip (its two-pass default rescores earlier chunks with a cache that holds the flipped token) and
the vocabulary sweep (a handful of tokens at the last position already carry more than probability 1)
flag it, with positions and numbers. The real folder is never committed: it comes from PGOLF_PRS."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditor.reproduce.probes import probe_record
from auditor.reproduce.sandbox import bwrap_works

_PRS = os.environ.get("PGOLF_PRS", "")
PR864 = Path(_PRS) / "864" / "records" / "track_10min_16mb" / "2026-03-26_11L_ParallelMuon_NgramBackoff" if _PRS else None


@pytest.mark.skipif(PR864 is None or not PR864.is_dir(), reason="PR #864 folder not extracted locally (set PGOLF_PRS)")
def test_pr864_flagged_by_the_re_entered_flip_and_the_sweep(tmp_path):
    pytest.importorskip("sentencepiece")
    assert bwrap_works()[0], "the probes of a real record run only in bubblewrap"
    out = probe_record(PR864, sandbox="bwrap", work=tmp_path / "work", timeout_s=240, tok_cache=tmp_path / "tok")
    got = {f.rule: f for f in out.findings if f.severity.value == "error"}
    n = out.numbers["train_gpt.py"]
    assert n["mode"] == "re-entered" and n["reentry"]["function"] == "eval_val_ngram"
    assert n["reentry"]["replay_matches_original"] is True
    flip = got["PROBE-SUFFIX-FLIP"]
    assert flip.file == "train_gpt.py" and flip.line == 648  # pass 2's accumulation
    assert "flipping the token at position 2048 (last; " in flip.message and "score(s) of earlier targets" in flip.message
    assert flip.evidence[0].startswith("flip at 2048 (last): batch ")
    norm = got["PROBE-NORMALIZATION"]
    assert norm.line == 648 and n["sweep"]["position"] == 2048 and n["sweep"]["sum_p"] > 1.0
    assert f"{n['sweep']['tokens']} of 1024 tokens already carry Σ p = " in norm.message
