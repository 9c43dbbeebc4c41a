"""The time caps, run-log facts (measured in ``auditor.evidence.runs``) as the TIME-*, STATS-* and
ARTIFACT-* rules ask for them, and the hand-written baseline-format logs their VALID/INVALID cases
use. Registers no rule."""
from __future__ import annotations

from auditor.evidence.runs import used_runs as _used_runs
from auditor.model import LogFile, RunLog

TRAIN_CAP_MS = 600_000.0
EVAL_CAP_S = 600.0
REF_GPUS = 8


def used_runs(ctx) -> list[tuple[LogFile, RunLog]]:
    """The (log, run) pairs whose finals the measured score uses (one per seed), else every complete run."""
    return _used_runs(ctx.evidence, ctx.measured)


def baseline_log(seed: int, bpb: float, loss: float, *, train_ms: int = 599_800, world_size: int = 8, cap_s: float = 600.0,
                 code: int = 47_642, model: int = 15_812_345, eval_ms: int = 9_000, extra_hp: dict[str, str] | None = None,
                 gptq: str = "", after: str = "", stopped: bool = True) -> str:
    """A log in the shape of the baseline train_gpt.py (records.md §3), written by us for tests."""
    hp = {"seed": str(seed), "train_seq_len": "1024", "iterations": "20000", "max_wallclock_seconds": f"{cap_s}",
          "matrix_lr": "0.04", "warmdown_iters": "1200"}
    hp.update(extra_hp or {})
    dump = "\n".join(f"  {k}: {v}" for k, v in hp.items())
    stop = f"stopping_early: wallclock_cap train_time:{train_ms}ms step:13780/20000\n" if stopped else ""
    return (
        f"Hyperparameters:\n{dump}\n"
        f"world_size:{world_size} grad_accum_steps:{8 // world_size}\n"
        f"max_wallclock_seconds:{cap_s:.3f}\n"
        "train_shards: 80\nval_tokens: 62021632\n"
        "step:0/20000 val_loss:6.9357 val_bpb:4.1077 train_time:0ms step_avg:0.01ms\n"
        f"step:13780/20000 val_loss:{loss + 0.01:.4f} val_bpb:{bpb + 0.006:.4f} train_time:{train_ms}ms step_avg:43.54ms\n"
        f"{stop}{gptq}"
        f"peak memory allocated: 10184 MiB reserved: 10302 MiB\n"
        f"Serialized model: 67224983 bytes\nCode size: {code} bytes\nTotal submission size: {67224983 + code} bytes\n"
        f"Serialized model int8+zlib: {model} bytes (payload:17178912 raw_torch:17224025 payload_ratio:3.91x)\n"
        f"Total submission size int8+zlib: {model + code} bytes\n"
        f"{after}"
        f"final_int8_zlib_roundtrip val_loss:{loss:.4f} val_bpb:{bpb:.4f} eval_time:{eval_ms}ms\n"
        f"final_int8_zlib_roundtrip_exact val_loss:{loss:.8f} val_bpb:{bpb:.8f}\n"
    )


def three_seeds(**kw) -> dict[str, str]:
    """Three seed logs of one configuration; ``kw`` goes to every ``baseline_log``."""
    finals = {1337: (1.2244, 2.0727), 42: (1.2251, 2.0739), 2024: (1.2239, 2.0718)}
    return {f"train_seed{s}.log": baseline_log(s, b, l, **kw) for s, (b, l) in finals.items()}
