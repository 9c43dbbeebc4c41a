"""Builders for the re-run harness tests: real shards, a real sentencepiece model, and a record folder
whose train_gpt.py is our tiny torchrun fixture (tests/fixtures/reproduce/tiny_train.py)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).parent / "fixtures" / "reproduce" / "tiny_train.py"
VOCAB = 64


def write_shard(path: Path, tokens: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = np.zeros(256, dtype="<i4")
    header[:3] = (20240520, 1, tokens.size)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype("<u2").tobytes())


def make_data(root: Path, n_val: int = 4000, vocab: int = VOCAB) -> tuple[Path, Path]:
    """A dataset folder with one val and one train shard, and a sentencepiece model of ``vocab`` pieces."""
    data = root / "data" / "datasets" / "tiny"
    rng = np.random.default_rng(0)
    write_shard(data / "fineweb_val_000000.bin", rng.integers(0, vocab, n_val))
    write_shard(data / "fineweb_train_000000.bin", rng.integers(0, vocab, 8000))
    tok = root / "data" / "tokenizers" / f"tiny_{vocab}.model"
    tok.parent.mkdir(parents=True, exist_ok=True)
    import sentencepiece as spm

    text = root / "spm.txt"
    words = ["the", "cat", "sat", "on", "mat", "golf", "parameter", "bytes", "token", "model", "loss", "seed"]
    text.write_text("\n".join(" ".join(rng.choice(words, 8)) for _ in range(400)), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(tok.with_suffix("")), vocab_size=vocab, model_type="bpe",
                                   character_coverage=1.0, minloglevel=2)
    return data, tok


def fixture_bpb(data: Path, seed: int, world: int = 1, vocab: int = VOCAB) -> float:
    """What tiny_train.py prints for this data and seed (its score is a checksum, not a model)."""
    header = np.fromfile(data / "fineweb_val_000000.bin", dtype="<i4", count=256)
    tokens = np.fromfile(data / "fineweb_val_000000.bin", dtype="<u2", offset=1024)[: header[2]]
    return 1.0 + float(tokens.astype(np.float64).sum()) / (tokens.size * vocab) + (seed % 97) * 1e-5


def claimed_log(seed: int, bpb: float, n_val: int) -> str:
    return "\n".join([
        f"val_loader:shards pattern=x tokens:{n_val}", "world_size:2 grad_accum_steps:1", f"seed:{seed}",
        "step:5/5 train_loss:1.0000 train_time:3ms step_avg:1.00ms",
        "Serialized model int8+zlib: 2400 bytes", "Total submission size int8+zlib: 6000 bytes",
        "stopping_early: wallclock_cap train_time:3ms step:5/5",
        f"final_int8_zlib_roundtrip val_loss:{bpb * 1.4:.4f} val_bpb:{bpb:.4f} eval_time:5ms",
        f"final_int8_zlib_roundtrip_exact val_loss:{bpb * 1.4:.8f} val_bpb:{bpb:.8f}", ""])


def make_record(root: Path, data: Path, tok: Path, seeds=(1, 2), claim_offset: float = 0.0, extra_env: str = "",
                track: str = "track_10min_16mb", name: str = "2026-11-01_Tiny") -> Path:
    folder = root / "records" / track / name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURE, folder / "train_gpt.py")
    n_val = int(np.fromfile(data / "fineweb_val_000000.bin", dtype="<i4", count=3)[2])
    vals = {s: fixture_bpb(data, s) for s in seeds}
    for s, v in vals.items():
        (folder / f"train_seed{s}.log").write_text(claimed_log(s, v, n_val), encoding="utf-8")
    mean = sum(vals.values()) / len(vals)
    (folder / "submission.json").write_text(json.dumps({
        "name": "Tiny fixture", "author": "pgolf tests", "val_bpb": round(mean + claim_offset, 8), "seeds": list(seeds),
        "bytes_total": 6000}), encoding="utf-8")
    (folder / "README.md").write_text(
        "# Tiny fixture\n\nRun:\n\n```bash\n"
        f"DATA_PATH={data} TOKENIZER_PATH={tok} VOCAB_SIZE={VOCAB} ITERATIONS=5 {extra_env}"
        "torchrun --standalone --nproc_per_node=2 train_gpt.py\n```\n", encoding="utf-8")
    return folder


CLOCK_FIXTURE = Path(__file__).parent / "fixtures" / "reproduce" / "clock_train.py"


def make_clock_record(root: Path, seed: int = 7, cap_s: float = 2.0, step_sleep: float = 0.01,
                      name: str = "2026-11-06_ClockFixture") -> Path:
    """A record whose warm-down starts at 60 % of its wall-clock cap (tests/fixtures/reproduce/clock_train.py),
    with its claimed log made by really running it once here (torchrun, one gloo rank)."""
    import os
    import subprocess
    import sys

    folder = root / "records" / "track_10min_16mb" / name
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(CLOCK_FIXTURE, folder / "train_gpt.py")
    env_doc = f"MAX_WALLCLOCK_SECONDS={cap_s:g} WARMDOWN_START=0.6 VAL_LOSS_EVERY=25"
    env = dict(os.environ, SEED=str(seed), RUN_ID=f"train_seed{seed}", FIXTURE_STEP_SLEEP=str(step_sleep),
               **dict(kv.split("=", 1) for kv in env_doc.split()))
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "train_gpt.py"],
                       cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"the clock fixture failed: {r.stderr[-2000:]}")
    log = folder / "logs" / f"train_seed{seed}.txt"
    (folder / f"train_seed{seed}.log").write_text(log.read_text(encoding="utf-8"), encoding="utf-8")
    shutil.rmtree(folder / "logs")
    (folder / "final_model.int8.ptz").unlink(missing_ok=True)
    final = [x for x in (folder / f"train_seed{seed}.log").read_text().splitlines() if "_exact" in x][-1]
    bpb = float(final.rsplit("val_bpb:", 1)[1])
    (folder / "submission.json").write_text(json.dumps({"name": "Clock fixture", "author": "pgolf tests", "val_bpb": bpb,
                                                        "seeds": [seed]}), encoding="utf-8")
    (folder / "README.md").write_text(f"# Clock fixture\n\n```bash\n{env_doc} torchrun --standalone --nproc_per_node=1 train_gpt.py\n```\n",
                                      encoding="utf-8")
    return folder


def loss_curve(log_text: str) -> dict[int, float]:
    """step -> train_loss of every logged training step."""
    import re

    out = {}
    for m in re.finditer(r"^step:(\d+)/\d+ train_loss:([\d.]+)", log_text, re.M):
        out[int(m.group(1))] = float(m.group(2))
    return out


class BusyLoops:
    """``n`` processes spinning on the CPU (pinned to ``cpu`` when given), started and killed by pid by
    the test that uses them. ``arm()`` starts them asleep, waiting for a trigger file, so that ``start()``
    loads the CPU at once (starting processes on a loaded machine takes longer than the run they are
    meant to slow down). Each is a session of its own: with autogroup scheduling the CPU is shared
    between sessions first, and torchrun puts every rank in a session of its own. Each also ends by
    itself after ``LIFETIME_S``, should the test die before killing it."""

    LIFETIME_S = 300
    _CODE = ("import os, sys, time\nend = time.time() + {life}\n"
             "while not os.path.exists(sys.argv[1]) and time.time() < end: time.sleep(0.05)\n"
             "while time.time() < end: pass\n")

    def __init__(self, n: int, cpu: int | None = None):
        self.n = n
        self.cpu = cpu
        self.trigger: Path | None = None
        self.procs: list = []

    def arm(self, trigger: Path) -> None:
        import os
        import subprocess
        import sys

        self.trigger = trigger
        code = self._CODE.format(life=self.LIFETIME_S)
        for _ in range(self.n):
            p = subprocess.Popen([sys.executable, "-S", "-I", "-c", code, str(trigger)], start_new_session=True,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(p)
            if self.cpu is not None and hasattr(os, "sched_setaffinity"):
                try:
                    os.sched_setaffinity(p.pid, {self.cpu})
                except OSError:
                    pass

    def start(self) -> None:
        if self.trigger is None:
            raise RuntimeError("arm() first")
        self.trigger.write_text("go\n")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            p.wait(timeout=30)
        self.procs = []


def pin_to(cpu: int | None):
    """A preexec_fn that pins the child (and what it starts) to one CPU; None: no pinning."""
    import os

    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    return lambda: os.sched_setaffinity(0, {cpu})
