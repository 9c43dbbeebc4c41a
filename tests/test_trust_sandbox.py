"""Trust boundaries of `pgolf reproduce` and `pgolf probe`: what the sandboxed record can see, write
and leave behind. The "record" here is our own script playing a hostile entrant."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from auditor.reproduce.sandbox import bwrap_argv, bwrap_works, interpreter_paths
from tests.reproduce_helpers import make_data

SANDBOX_OK, SANDBOX_WHY = bwrap_works()
pytestmark = pytest.mark.skipif(not SANDBOX_OK, reason=f"no usable bubblewrap here: {SANDBOX_WHY}")
ROOT = Path(__file__).resolve().parents[1]
SECRET = f"pgolf-secret-{uuid.uuid4().hex}"

HOSTILE = textwrap.dedent('''\
    """Plays a hostile record: looks around, plants links for pgolf to write or read through."""
    import glob, json, os, resource, sys
    seed_dir = os.path.dirname(os.getcwd())
    out = {"env_secret": os.environ.get("PGOLF_TRUST_SECRET", "absent"), "env_keys": sorted(os.environ)}
    def can_read(p):
        try:
            with open(p, "rb") as f:
                f.read(1)
            return True
        except OSError:
            return False
    out["read"] = {p: can_read(p) for p in ("/etc/shadow", "/etc/gshadow", "/root/.profile", "/root/.bashrc",
                                            os.environ["TRUST_HOST_FILE"], os.environ["TRUST_README_FILE"])}
    out["listed"] = {d: sorted(os.listdir(d)) if os.path.isdir(d) else [] for d in ("/home", "/root", "/var", "/work", "/etc")}
    out["host_tmp"] = os.path.exists(os.environ["TRUST_HOST_FILE"])
    planted = {}
    for name, target in (("console.txt", os.environ["TRUST_TARGET"]), ("console.raw.txt", os.environ["TRUST_HOST_FILE"]),
                         ("manifest.json", os.environ["TRUST_TARGET"])):
        for where in (seed_dir, os.path.dirname(seed_dir)):
            p = os.path.join(where, name)
            try:
                if os.path.lexists(p):
                    os.unlink(p)
                os.symlink(target, p)
                planted[p] = "planted"
            except OSError as e:
                planted[p] = type(e).__name__
    os.makedirs("logs", exist_ok=True)
    try:
        os.symlink(os.environ["TRUST_HOST_FILE"], "logs/train_seed1.txt")
    except OSError:
        pass
    out["planted"] = planted
    out["limits"] = {n: resource.getrlimit(getattr(resource, n)) for n in ("RLIMIT_NPROC", "RLIMIT_AS", "RLIMIT_FSIZE", "RLIMIT_CORE")}
    with open("trust_report.json", "w") as f:
        json.dump(out, f)
    print("TRUST " + json.dumps(out), flush=True)
    print("secret is " + out["env_secret"], flush=True)
    sys.exit(3)
''')


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data"))


def _hostile_record(root: Path, readme_path: Path) -> Path:
    folder = root / "records" / "track_10min_16mb" / "2026-11-01_Hostile"
    folder.mkdir(parents=True)
    (folder / "train_gpt.py").write_text(HOSTILE, encoding="utf-8")
    (folder / "submission.json").write_text(json.dumps({"author": "x", "val_bpb": 1.2, "seeds": [1]}), encoding="utf-8")
    # a README path outside the folder must not be bound into the sandbox (nor probed by preflight)
    (folder / "README.md").write_text(f"```\nEXTRA_PATH={readme_path.parent} VOCAB_SIZE=64 torchrun --standalone "
                                      "--nproc_per_node=1 train_gpt.py\n```\n", encoding="utf-8")
    return folder


def _reproduce(python: str, folder: Path, run_dir: Path, data, env: dict[str, str], timeout: float = 300):
    cmd = [python, "-P", "-m", "auditor", "reproduce", str(folder), "--nproc", "1", "--run-dir", str(run_dir),
           "--data", str(data[0]), "--tokenizer", str(data[1]), "--format", "json", "--quiet", "--force", "--timeout", "240"]
    return subprocess.run(cmd, cwd=run_dir.parent, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, data):
    base = tmp_path_factory.mktemp("hostile")
    host_file = base / "host-secret.txt"  # under /tmp on the host: the sandbox's /tmp is its own
    host_file.write_text(SECRET + "\n", encoding="utf-8")
    readme_file = base / "readme-dir" / "x.txt"
    readme_file.parent.mkdir()
    readme_file.write_text(SECRET + "\n", encoding="utf-8")
    target = base / "target.txt"
    target.write_text("untouched\n", encoding="utf-8")
    folder = _hostile_record(base, readme_file)
    run_dir = base / "run"
    env = {**os.environ, "PGOLF_TRUST_SECRET": SECRET, "TRUST_HOST_FILE": str(host_file), "TRUST_README_FILE": str(readme_file),
           "TRUST_TARGET": str(target), "GITHUB_TOKEN": SECRET}
    env.pop("PYTHONPATH", None)
    # the record reads its test switches from --env (the reviewer's), like any other variable
    proc = subprocess.run([sys.executable, "-P", "-m", "auditor", "reproduce", str(folder), "--nproc", "1", "--run-dir", str(run_dir),
                           "--data", str(data[0]), "--tokenizer", str(data[1]), "--format", "json", "--quiet", "--force",
                           "--env", f"TRUST_HOST_FILE={host_file}", "--env", f"TRUST_README_FILE={readme_file}",
                           "--env", f"TRUST_TARGET={target}"],
                          cwd=base, capture_output=True, text=True, timeout=400, env=env)
    trust = json.loads((run_dir / "seed_1" / "record" / "trust_report.json").read_text())
    return {"proc": proc, "trust": trust, "run_dir": run_dir, "target": target, "host_file": host_file, "base": base}


def test_no_write_through_a_planted_symlink(hostile_run):
    """Item 2: the record planted seed_<s>/console.txt as a link to a host path; pgolf wrote through it,
    and copied a host file through console.raw.txt."""
    run_dir = hostile_run["run_dir"]
    assert "Traceback (most recent call last)" not in hostile_run["proc"].stderr, hostile_run["proc"].stderr[-3000:]
    assert hostile_run["target"].read_text() == "untouched\n"
    planted = hostile_run["trust"]["planted"]
    assert len(planted) == 6
    for p in planted:  # refused, or made in the sandbox's own /tmp: never on the host
        assert not Path(p).is_symlink(), (p, planted[p])
    for name in ("console.txt", "console.raw.txt"):
        p = run_dir / "seed_1" / name
        assert p.is_file() and not p.is_symlink()
        assert SECRET not in p.read_text(errors="replace").split("secret is ")[0]
    report = (run_dir / "report.json").read_text()
    assert SECRET not in report  # nor the host file read through logs/train_seed1.txt, nor the environment
    assert (run_dir / "manifest.json").is_file() and not (run_dir / "manifest.json").is_symlink()


def test_the_sandbox_shows_only_what_the_run_needs(hostile_run):
    """Item 3: /etc/shadow and ~/.profile readable as root; the whole environment passed in (a CI secret
    echoed into report.json); README paths bound in; no limits inside."""
    t = hostile_run["trust"]
    assert t["env_secret"] == "absent"
    assert "GITHUB_TOKEN" not in t["env_keys"] and "PGOLF_TRUST_SECRET" not in t["env_keys"]
    assert {"PATH", "HOME", "SEED", "RUN_ID", "VOCAB_SIZE", "DATA_PATH", "TOKENIZER_PATH"} <= set(t["env_keys"])
    assert not any(t["read"].values()), t["read"]
    # only the path leading to what is bound (the interpreter, pgolf, the run) shows; nothing else of the host
    bound = [*interpreter_paths(), ROOT, hostile_run["run_dir"]]
    for d, names in t["listed"].items():
        if d == "/etc":
            assert "shadow" not in names and "gshadow" not in names and "sudoers" not in names and len(names) <= 25, names
            continue
        for n in names:
            assert any(Path(d) / n == b or Path(d) / n in b.parents for b in bound), (d, n)
    assert t["host_tmp"] is False
    lim = t["limits"]
    assert lim["RLIMIT_NPROC"][0] > 0 and lim["RLIMIT_NPROC"][0] != -1
    assert lim["RLIMIT_FSIZE"][0] > 0 and lim["RLIMIT_FSIZE"][0] != -1
    assert lim["RLIMIT_AS"][0] > 0 and lim["RLIMIT_AS"][0] != -1  # a CPU run (no GPU here)
    assert lim["RLIMIT_CORE"][0] == 0
    assert SECRET not in hostile_run["proc"].stdout


def test_bwrap_binds_no_home_and_no_shadow(tmp_path):
    argv = bwrap_argv(["true"], workdir=tmp_path, writable=[tmp_path])
    binds = {argv[i + 2] for i, a in enumerate(argv) if a in ("--bind", "--ro-bind", "--ro-bind-try", "--dev-bind")}
    assert "/" not in binds and "/etc" not in binds and "/home" not in binds and "/root" not in binds
    assert not any(b.startswith("/etc/") and "shadow" in b for b in binds)
    assert all(p.exists() for p in interpreter_paths())
    assert "--die-with-parent" in argv and "--new-session" in argv and "--unshare-all" in argv


def _venv(where: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(where)], check=True,
                   capture_output=True, timeout=120)
    return where / "bin" / "python"


def _interpreters(tmp_path: Path):
    """(label, python): a virtualenv under /tmp, one under /root (the home folder), and this interpreter."""
    out = []
    tmp_venv = Path("/tmp") / f"pgolf-venv-{uuid.uuid4().hex[:8]}"
    out.append(("venv under /tmp", tmp_venv))
    home = Path.home()
    if str(home).startswith(("/root", "/home")) and os.access(home, os.W_OK):
        out.append(("venv under home", home / f".pgolf-venv-{uuid.uuid4().hex[:8]}"))
    return out


@pytest.mark.slow
def test_reproduce_and_probe_work_from_any_interpreter_location(tmp_path, data):
    """Item 4: with the virtualenv under /tmp the sandbox hid the interpreter (bwrap: execvp … No such file)."""
    made = []
    try:
        pythons = [("system site-packages", Path(sys.executable))]
        for label, where in _interpreters(tmp_path):
            pythons.append((label, _venv(where)))
            made.append(where)
        for label, python in pythons:
            folder = tmp_path / label.replace(" ", "_")
            from tests.reproduce_helpers import make_record

            rec = make_record(folder, *data, seeds=(1,))
            run_dir = folder / "run"
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            proc = _reproduce(str(python), rec, run_dir, data, env)
            assert proc.returncode == 0, (label, proc.stdout[-2000:], proc.stderr[-2000:])
            doc = json.loads(proc.stdout)
            assert doc["records"][0]["measured"]["reproduce"]["reproduced"], label
            assert "execvp" not in proc.stderr
            probe = subprocess.run([str(python), "-P", "-m", "auditor", "probe", str(ROOT / "reference_impl" / "ngram.py"),
                                    "--format", "json"], cwd=folder, capture_output=True, text=True, timeout=300, env=env)
            assert probe.returncode == 0, (label, probe.stdout[-2000:], probe.stderr[-2000:])
            found = json.loads(probe.stdout)["records"][0]["findings"]
            assert found and not [f for f in found if f["rule"] == "PROBE-NOT-RUN"], (label, found)
            assert json.loads(probe.stdout)["records"][0]["measured"]["sandbox"] == "bwrap"
    finally:
        for where in made:
            shutil.rmtree(where, ignore_errors=True)
