"""The CPU layer runs a record as ``__main__`` at toy size: eval-cache tables hard-coded in the script
(PR #779's ``self.BUCKETS = 4_194_304``, which no env knob reaches) are shrunk so that hash collisions
happen on the toy stream as they do at full scale; every line stays where it was."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from auditor.reproduce.cpu_toy import EVAL_CACHE_BUCKETS, toy_source

MIXER = '''import inspect, sys
class BackoffNgramMixer:
    def __init__(self, vocab_size: int = 1024):
        self.BUCKETS = 4_194_304
        self.bigram_buckets = 4096
        self.trigram = dict(num_buckets=8192)
def lookup(tokens, ngram_buckets: int = 1 << 22):
    return ngram_buckets
if __name__ == "__main__":
    m = BackoffNgramMixer()
    print("buckets", m.BUCKETS, m.bigram_buckets, lookup([1]), "line", inspect.currentframe().f_lineno, __file__.endswith("rec.py"))
'''


def test_hard_coded_eval_cache_tables_are_shrunk_on_their_own_lines():
    toy = toy_source(MIXER)
    assert "self.BUCKETS = 64\n" in toy and "ngram_buckets: int = 64)" in toy
    assert "self.bigram_buckets = 4096" in toy and "dict(num_buckets=8192)" in toy  # the model's hash embeddings are no eval cache
    assert len(toy.splitlines()) == len(MIXER.splitlines())
    assert toy_source("BUCKETS = 64\nngram_buckets = 128\n") == "BUCKETS = 64\nngram_buckets = 128\n"  # already toy-sized


def test_the_cpu_layer_runs_the_record_with_its_tables_shrunk(tmp_path: Path):
    (tmp_path / "rec.py").write_text(MIXER)
    out = subprocess.run([sys.executable, "-m", "auditor.reproduce.cpu_layer", "rec.py"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["buckets", str(EVAL_CACHE_BUCKETS), "4096", str(EVAL_CACHE_BUCKETS), "line", "11", "True"]


FLOORED = '''import os
def eval_cache(buckets):
    if buckets < 1024 or (buckets & (buckets - 1)) != 0:
        raise ValueError(f"NGRAM_EVAL_BUCKETS must be a power of two >=1024, got {buckets}")
    return buckets
print("buckets", eval_cache(int(os.environ.get("NGRAM_EVAL_BUCKETS", 4_194_304))))
'''


def test_a_script_that_refuses_toy_sized_tables_gets_its_own_floor(tmp_path: Path):
    """PR #993 raises on fewer than 1,024 buckets: the toy 64 made it a PROBE-NOT-RUN."""
    (tmp_path / "rec.py").write_text(FLOORED)
    out = subprocess.run([sys.executable, "-m", "auditor.reproduce.cpu_layer", "rec.py"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
                                           "NGRAM_EVAL_BUCKETS": str(EVAL_CACHE_BUCKETS)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["buckets", "1024"]


def test_varlen_flash_attention_attends_within_each_packed_sequence(monkeypatch):
    """Records from 2026-04-10 on pack documents and call ``flash_attn_varlen_func`` (the import failed)."""
    import torch

    from auditor.reproduce import cpu_layer

    monkeypatch.setattr(sys, "modules", dict(sys.modules))  # the stand-in modules stay in this test
    cpu_layer._shim_flash()
    from flash_attn_interface import flash_attn_func, flash_attn_varlen_func

    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(10, 4, 8, generator=g) for _ in range(3))
    kv2 = (k[:, :2].clone(), v[:, :2].clone())  # GQA: 2 kv heads for 4 query heads
    cu = torch.tensor([0, 3, 10], dtype=torch.int32)
    out = flash_attn_varlen_func(q, *kv2, cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=7, max_seqlen_k=7, causal=True, window_size=(-1, -1))
    for s, e in ((0, 3), (3, 10)):
        alone = flash_attn_func(q[None, s:e], kv2[0][None, s:e], kv2[1][None, s:e], causal=True)[0]
        assert torch.allclose(out[s:e], alone, atol=1e-6)
    k2 = kv2[0].clone()
    k2[5:] += 1.0  # the second sequence's later keys: the first sequence and the second's earlier rows do not move
    moved = flash_attn_varlen_func(q, k2, kv2[1], cu_seqlens_q=cu, cu_seqlens_k=cu, max_seqlen_q=7, max_seqlen_k=7, causal=True)
    assert torch.equal(moved[:5], out[:5]) and not torch.allclose(moved[5:], out[5:])


THREADED = '''import threading, torch
from concurrent.futures import ThreadPoolExecutor
out = []
t = threading.Thread(target=lambda: out.append(torch.zeros(3).to(dtype=torch.int64).pin_memory().device.type))
t.start(); t.join()
print(out[0], ThreadPoolExecutor(1).submit(lambda: torch.ones(2, device="cuda").device.type).result())
'''


def test_a_loader_thread_sees_cpu_devices_too(tmp_path: Path):
    """Torch function modes are per thread: the 2026-04 records pin batches in a prefetch thread
    ('Cannot access accelerator device when none is available')."""
    (tmp_path / "rec.py").write_text(THREADED)
    for _ in range(3):  # a mode left entered in a worker thread aborted the interpreter at exit, 2 runs in 3
        out = subprocess.run([sys.executable, "-m", "auditor.reproduce.cpu_layer", "rec.py"], cwd=tmp_path, capture_output=True, text=True,
                             timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["cpu", "cpu"]


MINIFIED_SIZE = '''import subprocess
code = "x = 1\\n"
out = subprocess.run(["pyminify", "--no-rename-locals", "-"], input=code.encode(), capture_output=True, check=True).stdout
smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True).stdout
print(len(out), repr(smi))
'''


def test_the_code_size_step_minifies_as_the_identity(tmp_path: Path):
    """The 2026-04-10+ records measure their code through ``pyminify`` (not installed here): its input comes back."""
    (tmp_path / "rec.py").write_text(MINIFIED_SIZE)
    out = subprocess.run([sys.executable, "-m", "auditor.reproduce.cpu_layer", "rec.py"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["6", "''"]


def test_triton_kernels_would_run_in_its_cpu_interpreter(tmp_path: Path):
    """Set before the record runs, so that where triton is installed its kernels run in the numpy interpreter
    (measured: the 2026-04-10 VarLenAttn record then runs its fused-MLP kernel and its TTT eval on CPU)."""
    (tmp_path / "rec.py").write_text('import os\nprint(os.environ.get("TRITON_INTERPRET"))\n')
    out = subprocess.run([sys.executable, "-m", "auditor.reproduce.cpu_layer", "rec.py"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1"]
