"""The replayed clock (issue 18): a record whose warm-down starts at 60 % of its wall-clock cap gives the
same loss curve on a machine 3× slower (a sleep per step) as on the unslowed one, stops at the claimed
step, and without the replay stops early on the slow machine."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from auditor.reproduce import clock
from auditor.reproduce.main import ReproduceOptions, reproduce
from auditor.reproduce.sandbox import bwrap_works
from tests.reproduce_helpers import loss_curve, make_clock_record

SANDBOX_OK, _ = bwrap_works()
SEED = 7
FAST, SLOW = 0.02, 0.07  # seconds of sleep per step: the claimed machine, and one at least 3× slower (compute ≤ 5 ms)


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    return make_clock_record(tmp_path_factory.mktemp("clock"), seed=SEED, cap_s=2.0, step_sleep=FAST)


def _reproduce(record, run_dir, capsys, sleep, **kw):
    # --force: the fixture reads no dataset, and preflight asks for one in every record
    code = reproduce(ReproduceOptions(record=str(record), run_dir=str(run_dir), quiet=True, fmt="json", no_sandbox=not SANDBOX_OK, force=True,
                                      env={"FIXTURE_STEP_SLEEP": str(sleep)}, **kw))
    rec = json.loads(capsys.readouterr().out)["records"][0]
    log = (run_dir / f"seed_{SEED}" / "record" / "logs" / f"train_seed{SEED}.txt").read_text()
    return code, rec, log


def _warmdown_start(log: str) -> int:
    """The first step trained with a reduced learning rate (the lr_mul a step logs is the next step's)."""
    lr = {int(x[len("step:"):].split("/")[0]): float(x.split("lr_mul:")[1].split()[0]) for x in log.splitlines() if "lr_mul:" in x}
    return min(k for k, v in lr.items() if v < 1.0) + 1


def _stop(log: str) -> int:
    return int(log.split("stopping_early:")[1].split("step:")[1].split("/")[0])


@pytest.mark.slow
def test_replayed_clock_gives_the_same_curve_on_a_3x_slower_machine(record, tmp_path, capsys):
    claimed_log = (record / f"train_seed{SEED}.log").read_text()
    n = _stop(claimed_log)
    claimed = loss_curve(claimed_log)

    code_f, rec_f, log_f = _reproduce(record, tmp_path / "fast", capsys, FAST)
    code_s, rec_s, log_s = _reproduce(record, tmp_path / "slow", capsys, SLOW)
    assert code_f == 0 and code_s == 0, [f["message"] for f in rec_f["findings"] + rec_s["findings"]]
    fast, slow = loss_curve(log_f), loss_curve(log_s)
    # the same curve, step by step, and the cap falls on the claimed step on both machines
    assert _stop(log_f) == _stop(log_s) == n
    assert sorted(fast) == sorted(slow) == list(range(1, n + 1))
    assert max(abs(fast[k] - slow[k]) for k in fast) <= 1e-6
    # the warm-down really is time-based and starts at 60 % of the cap
    first = _warmdown_start(log_s)
    assert abs(first - 0.6 * n) <= 2
    # before either warm-down starts, the replayed curve is the claimed one to the last printed digit
    # (the claimed run's own start moved with its real step times, and its real clock ran on between
    # logging a step's lr_mul and using it: one step of margin)
    upto = min(first, _warmdown_start(claimed_log) - 1)
    assert upto > 1 and all(abs(fast[k] - claimed[k]) <= 1e-6 for k in range(1, upto + 1))
    # the slow machine really was slower, and the replay says so with both step counts
    (row_f,), (row_s,) = rec_f["measured"]["reproduce"]["seeds"], rec_s["measured"]["reproduce"]["seeds"]
    assert row_s["mode"] == row_f["mode"] == "replay" and row_s["stop_step"] == n
    assert row_s["real_ms_per_step"] >= 1.5 * row_f["real_ms_per_step"]  # nominally ≥ 3×; load can blur it
    thr = [f for f in rec_s["findings"] if f["rule"] == "REPRODUCE-THROUGHPUT"]
    assert thr and f"step {n}" in thr[0]["message"]
    match = [f for f in rec_s["findings"] if f["rule"] == "REPRODUCE-STEP-MATCH"]
    assert match and match[0]["severity"] == "info" and f"claimed stop step {n}" in match[0]["message"]


@pytest.mark.slow
def test_without_the_replay_the_slow_machine_stops_early(record, tmp_path, capsys):
    n = _stop((record / f"train_seed{SEED}.log").read_text())
    code, rec, log = _reproduce(record, tmp_path / "raw", capsys, SLOW, match_steps=False)
    stop = _stop(log)
    assert stop < 0.6 * n  # a real clock on a 3× slower machine: about a third of the steps
    (row,) = rec["measured"]["reproduce"]["seeds"]
    assert row["mode"] == "raw" and row["stop_step"] == stop and row["claimed_stop_step"] == n
    thr = [f for f in rec["findings"] if f["rule"] == "REPRODUCE-THROUGHPUT"]
    assert thr and f"step {n}" in thr[0]["message"] and f"step {stop}" in thr[0]["message"]
    assert not any("must come from the submitted code" in (f.get("fix") or "") for f in rec["findings"])
    assert not clock.folder_for(tmp_path / "raw" / f"seed_{SEED}").exists()


def test_clock_runtime_stays_out_of_non_workers_and_spawned_children(tmp_path):
    """Only a torchrun worker replays; the launcher (no LOCAL_RANK) and a child it spawns keep real time."""
    env_add = clock.install(tmp_path, 1000.0)
    probe = textwrap.dedent("""
        import os, subprocess, sys, time
        a = time.perf_counter(); time.sleep(0.2); b = time.perf_counter()
        child = subprocess.run([sys.executable, "-c", "import time; a=time.perf_counter(); time.sleep(0.2); print(time.perf_counter()-a)"],
                               capture_output=True, text=True).stdout.strip()
        print(round(b - a, 3), child)
    """)
    import os

    base = {k: v for k, v in os.environ.items() if k not in ("LOCAL_RANK", "PGOLF_CLOCK_OWNER")}
    out_launcher = subprocess.run([sys.executable, "-c", probe], env={**base, **env_add}, capture_output=True, text=True, timeout=60)
    out_worker = subprocess.run([sys.executable, "-c", probe], env={**base, **env_add, "LOCAL_RANK": "0"}, capture_output=True,
                                text=True, timeout=60)
    la, lc = map(float, out_launcher.stdout.split())
    wa, wc = map(float, out_worker.stdout.split())
    assert la >= 0.19 and lc >= 0.19  # real time
    assert wa == 0.0  # the worker's clock stands still between steps
    assert wc >= 0.19  # its spawned child is not the owner: real time


def test_clock_advances_per_training_step_not_per_optimizer(tmp_path):
    """Two optimizers per step advance the clock once; the step time is the replayed one."""
    env_add = clock.install(tmp_path, 250.0)
    prog = textwrap.dedent("""
        import time, torch
        w, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(1))
        oa, ob = torch.optim.SGD([w], lr=0.1), torch.optim.Adam([b], lr=0.1)
        t0 = time.perf_counter(); m0 = time.monotonic(); w0 = time.time()
        ev = []
        for i in range(4):
            (w.sum() + b.sum()).backward()
            oa.step(); ob.step()
            ev.append(round((time.perf_counter() - t0) * 1000, 6))
        print(ev, round((time.monotonic() - m0) * 1000, 6), round((time.time() - w0) * 1000, 3))
    """)
    import os

    env = {**{k: v for k, v in os.environ.items() if k != "PGOLF_CLOCK_OWNER"}, **env_add, "LOCAL_RANK": "0", "RANK": "0"}
    out = subprocess.run([sys.executable, "-c", prog], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("]")[0] + "]" == "[250.0, 500.0, 750.0, 1000.0]"
    mono, wall = map(float, out.stdout.split("]")[1].split())
    assert mono == 1000.0 and abs(wall - 1000.0) < 1.0
    reading = clock.read(tmp_path)
    assert reading is not None and reading.steps == 4 and reading.ms_per_step_replayed == 250.0
    assert reading.real_ms_per_step is not None and reading.real_ms_per_step < 250.0
