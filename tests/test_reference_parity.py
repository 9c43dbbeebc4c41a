"""`--preset baseline` follows the official baseline step for step: per-step training losses of the
reference at a small configuration against golden losses recorded from the official script's own
model and optimizer (benchmarks/parity_baseline.py; the JSON holds numbers only)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from reference_impl.parity import reference_run, write_stream  # noqa: E402

GOLDEN = Path(__file__).parent / "fixtures" / "reference_parity_golden.json"
TOL = 1e-3  # nats per step on average (issue 17); recorded at ~2e-7 on the machine that recorded the golden losses
# The same code on another CPU (an AMD EPYC with AVX-512: other GEMM kernels, other summation order) drifts by float
# noise that training amplifies: measured mean 3.9e-4, worst step 1.24e-3 over the 50 steps. A missing piece of
# the baseline leaves the curve by 2.8e-2 (Muon momentum warm-up) to 1.2e-1 (x0 mix) within 12 steps.
WORST = 3 * TOL


@pytest.fixture(scope="module")
def golden():
    return json.loads(GOLDEN.read_text())


@pytest.fixture(scope="module")
def train_glob(tmp_path_factory, golden):
    return write_stream(tmp_path_factory.mktemp("parity"), int(golden["env"]["VOCAB_SIZE"]))


def _run(train_glob, env, steps):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return reference_run(train_glob, env, steps)[0]
    finally:
        torch.set_num_threads(threads)


def test_losses_follow_the_official_baseline(golden, train_glob):
    want = golden["official_losses"]
    assert golden["steps"] == len(want) == 50 and golden["precision"] == "fp32"
    got = _run(train_glob, golden["env"], golden["steps"])
    diffs = [abs(a - b) for a, b in zip(got, want)]
    worst = max(range(len(diffs)), key=diffs.__getitem__)
    assert diffs[0] <= 1e-5, f"step 1: reference {got[0]:.6f} vs official {want[0]:.6f}"  # before any update: same model, same data
    assert sum(diffs) / len(diffs) <= TOL, f"mean |Δ| {sum(diffs) / len(diffs):.2e} over {len(diffs)} steps"
    assert diffs[worst] <= WORST, f"step {worst + 1}: reference {got[worst]:.6f} vs official {want[worst]:.6f}"
    assert want[-1] < want[0] - 2.0  # the curve really moves: the check is not between two flat lines


@pytest.mark.parametrize("knob", ["MUON_MOMENTUM_WARMUP_STEPS", "RESID_MIX"])
def test_the_check_sees_a_missing_piece(golden, train_glob, knob):
    # Without the Muon momentum warm-up (or the x0 mix) the curve leaves the official one within a few steps.
    got = _run(train_glob, {**golden["env"], knob: "0"}, 12)
    assert max(abs(a - b) for a, b in zip(got, golden["official_losses"])) > 5 * TOL
