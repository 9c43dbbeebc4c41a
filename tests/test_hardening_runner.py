"""The audit driver: progress on a terminal only, a report stdout can always carry, the time limit
through the real command line, and workers that see this process's working directory."""
from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from auditor.context import AuditOptions
from auditor.discover import discover
from auditor.runner import audit_folders, scrub_sys_path
from tests.ci_helpers import clean_record
from tests.hardening_fixtures import assert_no_traceback, clean_env, json_report, pgolf_exe, run_pgolf
from tests.helpers import write_folder


def _tree(tmp_path: Path, n: int) -> Path:
    tree = tmp_path / "tree"
    for i in range(n):
        write_folder(tree, clean_record(), name=f"2026-01-0{i + 1}_R{i}")
    return tree


def _run_with_tty_stderr(args: list[str], cwd: Path) -> tuple[int, bytes, bytes]:
    """stdout to a pipe, stderr to a pseudo-terminal (as when a person pipes the JSON to a file)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([pgolf_exe(), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=slave,
                            env=clean_env(COLUMNS="100", TERM="xterm"))
    os.close(slave)
    err = b""
    out_chunks = []
    streams = {master, proc.stdout}
    deadline = time.monotonic() + 240
    while streams and time.monotonic() < deadline:
        r, _, _ = select.select(list(streams), [], [], 0.2)
        if master in r:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                chunk = b""
            if chunk:
                err += chunk
            else:
                streams.discard(master)
        if proc.stdout in r:
            chunk = proc.stdout.read1(65536)
            if chunk:
                out_chunks.append(chunk)
            else:
                streams.discard(proc.stdout)
    os.close(master)
    return proc.wait(), b"".join(out_chunks), err


def test_progress_bar_goes_to_a_terminal_stderr_only(tmp_path):
    tree = _tree(tmp_path, 4)
    code, out, err = _run_with_tty_stderr(["audit", "records", "--jobs", "2", "-f", "json", "--fail-on", "never"], tree)
    assert code == 0
    assert len(json.loads(out)["records"]) == 4  # stdout is the report and nothing else
    assert b"auditing" in err and b"4/4" in err
    code, out, err = _run_with_tty_stderr(["audit", "records", "-q", "-f", "json", "--fail-on", "never"], tree)
    assert code == 0 and len(json.loads(out)["records"]) == 4
    assert b"auditing" not in err


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path):
    proc = run_pgolf(["audit", "records", "--jobs", "2", "-f", "json"], _tree(tmp_path, 3))
    assert proc.returncode == 0 and proc.stderr == ""


def test_time_limit_through_the_command_line(tmp_path):
    """Every folder over a (tiny) limit: each gets one line, the run still reports all of them, and
    the exit code says the audit is incomplete."""
    tree = _tree(tmp_path, 2)
    proc = run_pgolf(["audit", "records", "--jobs", "2", "-f", "json"], tree, PGOLF_FOLDER_TIMEOUT="0.001")
    assert_no_traceback(proc)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert len(report["records"]) == 2
    for rec in report["records"]:
        assert rec["verdict"] == "needs-review"
        assert rec["errors"][-1]["message"].startswith("audit stopped after 0.001 s (the per-folder time limit)")
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and all(ln.startswith("pgolf: records/") and "not fully audited" in ln for ln in lines)
    proc = run_pgolf(["audit", "records", "-f", "json", "--fail-on", "never"], tree, PGOLF_FOLDER_TIMEOUT="0.001")
    assert proc.returncode == 0  # --fail-on never means never


def test_closed_stdout_pipe_is_not_a_traceback(tmp_path):
    tree = _tree(tmp_path, 3)
    p1 = subprocess.Popen([pgolf_exe(), "audit", "records", "-f", "json", "--fail-on", "never"], cwd=tree,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    first = p1.stdout.read(10)
    p1.stdout.close()  # like `| head -c 10`
    _, err = p1.communicate(timeout=240)
    assert first == b'{\n  "schem'
    assert b"Traceback" not in err and b"BrokenPipe" not in err


def test_timings_file_names_files_and_stages(tmp_path):
    tree = _tree(tmp_path, 2)
    timings = tmp_path / "t.json"
    proc = run_pgolf(["audit", "records", "--jobs", "2", "-f", "json"], tree, PGOLF_TIMINGS_FILE=str(timings))
    json_report(proc)
    t = json.loads(timings.read_text())
    assert t["folders"] == 2 and t["failed"] == []
    stages = {(Path(x["folder"]).name, x["file"], x["stage"]) for x in t["timings"]}
    assert ("2026-01-01_R0", "submission.json", "claims") in stages
    assert ("2026-01-01_R0", "train_seed2.log", "log") in stages
    assert ("2026-01-02_R1", "train_gpt.py", "code") in stages
    assert all(x["seconds"] >= 0 for x in t["timings"])


def test_workers_use_this_process_working_directory(tmp_path, monkeypatch):
    """Workers fork from a server started once; they must still resolve relative paths here."""
    tree = _tree(tmp_path, 1)
    audit_folders(discover([tree]), AuditOptions(), jobs=1)  # make sure the server exists, started elsewhere
    monkeypatch.chdir(tree)
    (tree / "pgolf-waivers.toml").write_text("[[waiver]\nbroken = \n", encoding="utf-8")  # default waiver file, relative
    run = audit_folders(discover(["records"]), AuditOptions(), jobs=1)
    inproc = audit_folders(discover(["records"]), AuditOptions(), jobs=1, in_process=True)
    got = [p.line() for p in run.report.records[0].errors]
    assert got == [p.line() for p in inproc.report.records[0].errors]
    assert any(line.startswith("pgolf-waivers.toml") for line in got), got


def test_scrub_drops_cwd_and_audited_folders_but_keeps_pgolf(tmp_path, monkeypatch):
    folder = write_folder(tmp_path, clean_record())
    own = str(Path(__file__).resolve().parents[1])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", str(tmp_path), str(folder / "sub"), own, "/usr/lib/python3"])
    dropped = scrub_sys_path([folder])
    assert dropped == ["", str(tmp_path), str(folder / "sub")]
    assert sys.path == [own, "/usr/lib/python3"]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text().split("State:")[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_workers_end_when_the_runner_is_killed(tmp_path):
    """`kill -9 pgolf` mid-run: its worker, busy on a hung folder, must not live on as an orphan."""
    tree = tmp_path / "tree"
    write_folder(tree, clean_record(), name="x_hang")
    script = (
        "import multiprocessing as mp, sys, threading, time\n"
        "from auditor.context import AuditOptions\nfrom auditor.discover import discover\n"
        "from auditor.runner import audit_folders\nfrom tests.hardening_fixtures import misbehaving_worker\n"
        "def tell():\n    time.sleep(3)\n"
        "    print(' '.join(str(p.pid) for p in mp.active_children() if p.name == 'pgolf-audit-worker'), flush=True)\n"
        "threading.Thread(target=tell, daemon=True).start()\n"
        f"audit_folders(discover([{str(tree)!r}]), AuditOptions(), jobs=1, timeout_s=600, worker_target=misbehaving_worker)\n"
    )
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=repo, stdout=subprocess.PIPE, text=True, env=clean_env())
    pids = [int(p) for p in proc.stdout.readline().split()]
    assert pids and all(_alive(p) for p in pids)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(_alive(p) for p in pids)
