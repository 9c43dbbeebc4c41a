"""`pgolf reproduce` on our tiny torchrun fixture: plan, preflight, real torchrun (gloo) runs, verdict."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.reproduce.main import ReproduceOptions, reproduce
from auditor.reproduce.plan import build_plan, readme_command
from auditor.reproduce.progress import parse_step, strip_rank_prefix
from auditor.reproduce.sandbox import bwrap_works
from tests.reproduce_helpers import fixture_bpb, make_data, make_record

SANDBOX_OK, SANDBOX_WHY = bwrap_works()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data"))


def _opts(folder: Path, run_dir: Path, data=None, **kw) -> ReproduceOptions:
    kw.setdefault("no_sandbox", not SANDBOX_OK)
    if data is not None:  # paths outside the record folder come from the reviewer, never from its README
        kw.setdefault("data", str(data[0]))
        kw.setdefault("tokenizer", str(data[1]))
    return ReproduceOptions(record=str(folder), run_dir=str(run_dir), quiet=True, fmt="json", **kw)


def test_dry_run_prints_plan_and_starts_nothing(tmp_path, data):
    folder = make_record(tmp_path, *data, extra_env="TRAIN_SEQ_LEN=64 ")
    run_dir = tmp_path / "run"
    res = CliRunner().invoke(app, ["reproduce", str(folder), "--dry-run", "--nproc", "2", "--run-dir", str(run_dir), "--no-sandbox",
                                   "--data", str(data[0]), "--tokenizer", str(data[1])])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "seeds      1, 2   (submission.json seeds)" in out
    assert f"DATA_PATH={data[0]}   (--data)" in out
    assert "TRAIN_SEQ_LEN=64   (README.md:6)" in out
    assert "--standalone --nproc_per_node=2 --log-dir" in out
    assert "ok   variant   val tokens: shards 4,000, the logs show 4,000" in out
    assert "ok   tokenizer tiny_64.model: 64 pieces" in out
    assert not run_dir.exists()


def test_preflight_failures_one_line_each_with_fix(tmp_path, data):
    folder = make_record(tmp_path, *data, extra_env="MAX_WALLCLOCK_SECONDS=5 ")
    script = folder / "train_gpt.py"
    script.write_text("import flash_attn_interface\n" + script.read_text())
    readme = folder / "README.md"
    readme.write_text(readme.read_text().replace(str(data[0]), str(tmp_path / "nowhere")))
    run_dir = tmp_path / "run"
    res = CliRunner().invoke(app, ["reproduce", str(folder), "--run-dir", str(run_dir), "--no-sandbox", "--dry-run",
                                   "--tokenizer", str(data[1])])
    assert res.exit_code == 1
    fails = [line for line in res.output.splitlines() if line.strip().startswith("FAIL")]
    assert len(fails) == 2, res.output
    assert any("imports flash_attn_interface, which is not installed  → fix: pip install the FlashAttention 3 wheel" in x for x in fails)
    # a README path outside the record folder is not probed: the reviewer passes --data
    assert any(f"DATA_PATH={tmp_path / 'nowhere'} (README.md:6) is outside the record folder; not probed" in x
               and "→ fix: pass --data" in x for x in fails)
    # on CPU the 600 s cap of a 10-minute record is a warning (a smoke run), on GPUs a failed check
    assert any(line.strip().startswith("warn budget") and "MAX_WALLCLOCK_SECONDS=5" in line for line in res.output.splitlines())
    # without --dry-run nothing starts either
    code = reproduce(_opts(folder, run_dir, tokenizer=str(data[1])))
    assert code == 1 and not run_dir.exists()


def test_plan_reads_seeds_from_logs_and_overrides(tmp_path, data):
    folder = make_record(tmp_path, *data, seeds=(7, 9))
    sub = folder / "submission.json"
    obj = json.loads(sub.read_text())
    del obj["seeds"]
    sub.write_text(json.dumps(obj))
    plan = build_plan(folder, env={"ITERATIONS": "3"}, run_dir=tmp_path / "r")
    assert plan.seeds == [7, 9] and plan.seeds_origin == "the seeds of the logs"
    assert plan.env["ITERATIONS"].value == "3" and plan.env["ITERATIONS"].origin == "--env"
    assert plan.nproc == 1 and "without a GPU" in plan.nproc_origin
    assert build_plan(folder, seeds=[5], nproc=4, run_dir=tmp_path / "r").seeds == [5]
    plan = build_plan(folder, nnodes="2", rdzv_endpoint="10.0.0.1:29500", run_dir=tmp_path / "r")
    args = plan.torchrun_args(tmp_path / "ranks")
    assert "--nnodes=2" in args and "--rdzv-endpoint=10.0.0.1:29500" in args and "--standalone" not in args


def test_readme_command_parsing():
    readme = "x\n```\nNUM_LAYERS=11 EVAL_STRIDE=64 \\\n  torchrun --standalone --nproc_per_node=8 train_gpt.py\n```\n"
    cmd, line, env, nproc = readme_command(readme, "train_gpt.py")
    assert env == {"NUM_LAYERS": "11", "EVAL_STRIDE": "64"} and nproc == "8" and line == 3


def test_progress_parsing():
    assert strip_rank_prefix("[default0]:step:3/10 x") == "step:3/10 x"
    s = parse_step("[default0]:step:300/20000 train_loss:2.9120 train_time:45000ms step_avg:150.00ms")
    assert (s.step, s.total, s.loss, s.train_time_s) == (300, 20000, 2.912, 45.0)
    s = parse_step("1200/20000 train_loss: 2.5000 train_time: 2.5m tok/s: 100")
    assert s.train_time_s == 150.0


def test_reproduces_fixture_with_two_gloo_ranks(tmp_path, data, capsys):
    folder = make_record(tmp_path, *data)
    run_dir = tmp_path / "run"
    code = reproduce(_opts(folder, run_dir, data, nproc=2))
    report = json.loads(capsys.readouterr().out)
    rec = report["records"][0]
    assert code == 0, rec["findings"]
    rep = rec["measured"]["reproduce"]
    assert rep["reproduced"] and rep["nproc_per_node"] == 2
    # two gloo ranks rendezvous over loopback, inside bubblewrap's network namespace when there is one
    assert rep["sandbox"] == ("bwrap" if SANDBOX_OK else "none")
    for row in rep["seeds"]:
        assert row["val_bpb"] == pytest.approx(fixture_bpb(data[0], row["seed"]), abs=1e-8)
        assert row["artifact"] == "final_model.int8.ptz" and row["artifact_bytes"] > 0
    assert any(f["rule"] == "REPRODUCED" for f in rec["findings"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["code_sha256"]["train_gpt.py"] and len(manifest["data_sha256"]) == 2 and manifest["tokenizer_sha256"]
    assert manifest["versions"]["torch"].startswith("2.")
    console = (run_dir / "seed_1" / "console.txt").read_text()
    assert "final_int8_zlib_roundtrip_exact" in console and "[default0]:" not in console
    assert len(list((run_dir / "seed_1" / "ranks").rglob("stdout.log"))) == 2  # one per rank
    assert (run_dir / "report.json").is_file()


def test_edited_claim_is_not_reproduced(tmp_path, data, capsys):
    folder = make_record(tmp_path, *data, seeds=(3,), claim_offset=-0.02)
    code = reproduce(_opts(folder, tmp_path / "run", data, nproc=1))
    rec = json.loads(capsys.readouterr().out)["records"][0]
    assert code == 1
    mism = [f for f in rec["findings"] if f["rule"] == "REPRODUCE-MISMATCH"]
    assert len(mism) == 1 and mism[0]["severity"] == "error"
    assert "vs claimed" in mism[0]["message"] and "Δ +0.02000000" in mism[0]["message"], mism[0]["message"]
    assert rec["verdict"] == "fail"


def test_wall_clock_limit_kills_the_process_group(tmp_path, data, capsys):
    """The limit is counted from torchrun's start, so on a loaded machine importing torch can outlast a short
    limit before the script has started its child; the run is then repeated with a longer limit, with the same
    assertions on every run, until the script has started the child the kill must reach."""
    folder = make_record(tmp_path, *data, seeds=(1,), extra_env="FIXTURE_HANG=1 ")
    for limit in (12, 40, 120):
        run_dir = tmp_path / f"run_{limit}"
        t0 = time.monotonic()
        code = reproduce(_opts(folder, run_dir, data, nproc=1, timeout_s=limit, no_sandbox=True))
        elapsed = time.monotonic() - t0
        rec = json.loads(capsys.readouterr().out)["records"][0]
        assert code == 1
        failed = [f["message"] for f in rec["findings"] if f["rule"] == "REPRODUCE-FAILED"]
        assert any(f"seed 1: killed after the {limit} s wall-clock limit" in m for m in failed), failed
        # the script sleeps for an hour: killed at the limit, not before and not when the sleep ends
        assert limit <= elapsed < limit + 300
        pid_file = run_dir / "seed_1" / "record" / "hang_child.pid"
        if pid_file.exists():
            break
    else:
        pytest.fail("the script never got as far as starting its child, even with a 120 s limit")
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 30  # SIGKILL is sent; the kernel finishes it when the child is next scheduled
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)  # the grandchild the script started is gone too


def _alive(pid: int) -> bool:
    """The fixture's `sleep(3600)` child, running or sleeping; a zombie waiting for init to reap it is dead,
    and so is a pid that now belongs to another program."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state != "Z" and b"sleep(3600)" in cmdline


def test_static_scan_of_what_a_script_needs():
    from auditor.reproduce.imports import missing_modules, scan_script

    src = ("import os, torch\nimport helper\ntry:\n    import brotli_not_here\nexcept ImportError:\n    brotli_not_here = None\n"
           "def compress(b):\n    import zzz_lazy_pkg\n    return zzz_lazy_pkg.c(b)\n"
           "import zzz_missing_pkg\nSEED = int(os.environ.get('SEED', 1))\nos.system('lrzip -z x')\n"
           "if not torch.cuda.is_available():\n    raise RuntimeError('CUDA is required')\n")
    needs = scan_script(src, local_modules={"helper"})
    mods = {n.module: n for n in needs.modules}
    assert set(mods) == {"torch", "brotli_not_here", "zzz_lazy_pkg", "zzz_missing_pkg"}  # stdlib and local left out
    assert mods["brotli_not_here"].optional and mods["zzz_lazy_pkg"].lazy and not mods["zzz_missing_pkg"].lazy
    assert [n.module for n in missing_modules(needs)] == ["zzz_lazy_pkg", "zzz_missing_pkg"]
    assert needs.env_reads == {"SEED": 11} and needs.binaries == [("lrzip", 12)]
    assert not needs.cpu_fallback and needs.uses_cuda == [(14, "raise without CUDA")]
