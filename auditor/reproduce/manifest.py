"""manifest.json: what exactly ran — hashes of the code, data shards and tokenizer, and the software/hardware."""
from __future__ import annotations

import hashlib
import json
import os
import platform
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import auditor
from auditor.reproduce.plan import Plan
from auditor.reproduce.preflight import find_shards, given_path, readable_regular

_TORCH_PROBE = ("import json, torch; print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, "
                "'cudnn': torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None, "
                "'gpus': [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}))")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return "not a regular file"
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def torch_versions() -> dict[str, Any]:
    """Asked in a child interpreter: the auditor process never imports torch."""
    try:
        r = subprocess.run([sys.executable, "-c", _TORCH_PROBE], capture_output=True, text=True, timeout=120)
        return json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 and r.stdout.strip() else {"error": r.stderr.strip()[-300:]}
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        return {"error": str(exc)}


def nvidia_smi() -> str | None:
    try:
        r = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                           capture_output=True, text=True, timeout=20)
        return r.stdout.strip() if r.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def build_manifest(plan: Plan) -> dict[str, Any]:
    code = {p.relative_to(plan.record).as_posix(): sha256_file(p) for p in sorted(plan.record.rglob("*"))
            if stat.S_ISREG(os.lstat(p).st_mode) and "__pycache__" not in p.parts}
    # only paths preflight may look at: given by the reviewer, or inside the record through no symlink
    data: dict[str, str] = {}
    _key, d = given_path(plan, ("DATA_PATH", "DATA_DIR"))
    if d is not None and d.is_dir():
        for split in ("val", "train"):
            for p in find_shards(d, split):
                if readable_regular(p, plan.record):
                    data[str(p)] = sha256_file(p)
    tok = {}
    _key, tp = given_path(plan, ("TOKENIZER_PATH",))
    if tp is not None and readable_regular(tp, plan.record):
        tok[str(tp)] = sha256_file(tp)
    return {
        "pgolf": auditor.__version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "record": str(plan.record),
        "entry": plan.entry,
        "seeds": plan.seeds,
        "nproc_per_node": plan.nproc,
        "nnodes": plan.nnodes,
        "rdzv_endpoint": plan.rdzv_endpoint,
        "sandbox": plan.sandbox,
        "limit_s": plan.limit_s,
        "env": {k: {"value": s.value, "from": s.origin} for k, s in sorted(plan.env.items())},
        "command": plan.torchrun_args(Path("<run_dir>/seed_<s>/ranks")),
        "code_sha256": code,
        "data_sha256": data,
        "tokenizer_sha256": tok,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "versions": torch_versions(),
        "nvidia_smi": nvidia_smi(),
    }


def write_manifest(plan: Plan, extra: dict[str, Any] | None = None) -> Path:
    m = build_manifest(plan)
    if extra:
        m.update(extra)
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    path = plan.run_dir / "manifest.json"
    from auditor.reproduce.sandbox import open_new

    with open_new(path) as f:
        f.write(json.dumps(m, indent=2) + "\n")
    return path
