"""manifest.json: what exactly ran — hashes of the code, data shards and tokenizer, and the software/hardware."""
from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import auditor
from auditor.reproduce.plan import Plan
from auditor.reproduce.preflight import find_shards

_TORCH_PROBE = ("import json, torch; print(json.dumps({'torch': torch.__version__, 'cuda': torch.version.cuda, "
                "'cudnn': torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None, "
                "'gpus': [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}))")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
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
            if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts}
    data: dict[str, str] = {}
    for key in ("DATA_PATH", "DATA_DIR"):
        if key in plan.env and Path(plan.env[key].value).is_dir():
            for split in ("val", "train"):
                for p in find_shards(Path(plan.env[key].value), split):
                    data[str(p)] = sha256_file(p)
    tok = {}
    if "TOKENIZER_PATH" in plan.env and Path(plan.env["TOKENIZER_PATH"].value).is_file():
        tp = Path(plan.env["TOKENIZER_PATH"].value)
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
    path.write_text(json.dumps(m, indent=2) + "\n", encoding="utf-8")
    return path
