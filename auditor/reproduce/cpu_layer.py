"""Run a CUDA-shaped record on a CPU: ``python -m auditor.reproduce.cpu_layer SCRIPT [ARGS]``.

Used only inside the sandbox, on the instrumented copy of a record (``probe_script``): never
imported by pgolf's own process. It installs the shims below, then runs SCRIPT as ``__main__``.
The probe checks the eval loop, not the score, so every shim only has to let the record proceed:

- device requests for CUDA (``device="cuda"``, ``torch.device("cuda", r)``, ``.cuda()``,
  ``.to("cuda")``, ``pin_memory()``) land on the CPU (a torch function mode rewrites them on every torch
  call, in every thread);
- CUDA-only calls are harmless (``synchronize``, memory statistics, ``set_device``, CUDA RNG,
  events, streams), and ``torch.cuda.is_available()`` answers True so a record that refuses to
  start without a GPU proceeds onto the CPU;
- ``torch.autocast("cuda", …)`` becomes CPU autocast in bfloat16;
- ``init_process_group("nccl")`` becomes gloo;
- flash-attn v2 (``flash_attn``) and v3 (``flash_attn_interface``) functions are backed by
  ``scaled_dot_product_attention`` on [B, T, H, D] tensors, the packed ``flash_attn_varlen_func`` one
  sequence (``cu_seqlens``) at a time;
- ``torch.compile`` is the identity (CPU inductor would spend the budget compiling);
- eval-cache tables hard-coded in the script (``self.BUCKETS = 4_194_304``) get the toy size the env knobs
  give the others (``cpu_toy.toy_source``), each on its own line; a script that refuses fewer buckets
  (``if buckets < 1024: raise``) gets its floor, in the env knobs too.

Triton kernels cannot be shimmed: a script that imports triton needs the package (its interpreter,
``TRITON_INTERPRET=1``, runs kernels on the CPU); without it the import fails and the probe says so.
"""
from __future__ import annotations

import os
import runpy
import sys
import types

CPU_REASON_TRITON = "the record imports triton, which is not installed here (its CPU interpreter TRITON_INTERPRET=1 needs the package)"


def _is_cuda(x) -> bool:
    import torch

    if isinstance(x, torch.device):
        return x.type == "cuda"
    if isinstance(x, str):
        return x == "cuda" or x.startswith("cuda:")
    return False


def _to_cpu(x):
    import torch

    return torch.device("cpu") if _is_cuda(x) or (isinstance(x, int) and not isinstance(x, bool)) else x


def _device_mode():
    import torch
    from torch.overrides import TorchFunctionMode

    tensor_cuda = torch.Tensor.cuda
    pin_memory = torch.Tensor.pin_memory
    torch_device = torch.device

    class CpuDevices(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func is tensor_cuda or func is pin_memory:
                return args[0]
            if func is torch_device:
                return torch_device("cpu") if args and _is_cuda(args[0]) else func(*args, **kwargs)
            if "device" in kwargs and kwargs["device"] is not None:
                kwargs["device"] = _to_cpu(kwargs["device"])
            args = tuple(torch.device("cpu") if _is_cuda(a) else a for a in args)
            return func(*args, **kwargs)

    return CpuDevices()


def _noop(*_a, **_k):
    return None


def _zero(*_a, **_k):
    return 0


class _Event:
    def __init__(self, *a, **k):
        import time

        self.t = time.perf_counter()

    def record(self, *a, **k):
        import time

        self.t = time.perf_counter()

    def synchronize(self):
        return None

    def wait(self, *a, **k):
        return None

    def query(self):
        return True

    def elapsed_time(self, other):
        return (other.t - self.t) * 1000.0


class _Stream:
    def __init__(self, *a, **k):
        pass

    def synchronize(self):
        return None

    def wait_stream(self, *a, **k):
        return None

    def wait_event(self, *a, **k):
        return None

    def record_event(self, *a, **k):
        return _Event()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _shim_cuda(torch) -> None:
    c = torch.cuda
    c.is_available = lambda: True
    c.device_count = lambda: 1
    c.current_device = _zero
    c.is_bf16_supported = lambda *a, **k: True
    c.get_device_name = lambda *a, **k: "pgolf CPU layer"
    c.get_device_capability = lambda *a, **k: (9, 0)
    c.get_device_properties = lambda *a, **k: types.SimpleNamespace(name="pgolf CPU layer", total_memory=1 << 34, major=9, minor=0,
                                                                   multi_processor_count=1)
    for name in ("synchronize", "set_device", "empty_cache", "reset_peak_memory_stats", "reset_max_memory_allocated",
                 "reset_accumulated_memory_stats", "manual_seed", "manual_seed_all", "seed", "seed_all", "init", "ipc_collect"):
        setattr(c, name, _noop)
    for name in ("max_memory_allocated", "max_memory_reserved", "memory_allocated", "memory_reserved"):
        setattr(c, name, _zero)
    c.memory_stats = lambda *a, **k: {}
    c.mem_get_info = lambda *a, **k: (1 << 34, 1 << 34)
    c.Event = _Event
    c.Stream = _Stream
    c.current_stream = lambda *a, **k: _Stream()
    c.default_stream = lambda *a, **k: _Stream()
    c.stream = lambda *a, **k: _Stream()
    c.get_rng_state = lambda *a, **k: torch.get_rng_state()
    c.set_rng_state = _noop
    c.get_rng_state_all = lambda *a, **k: [torch.get_rng_state()]
    c.set_rng_state_all = _noop

    class _Device:  # torch.cuda.device(i) as a context manager
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    c.device = _Device


def _shim_autocast(torch) -> None:
    real = torch.autocast

    class autocast(real):  # noqa: N801  (the name the records use)
        def __init__(self, device_type="cpu", dtype=None, enabled=True, cache_enabled=None):
            if device_type == "cuda":
                device_type = "cpu"
            if dtype is None or dtype == torch.float16:
                dtype = torch.bfloat16  # CPU autocast computes in bfloat16
            super().__init__(device_type, dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    torch.autocast = autocast
    torch.amp.autocast = autocast
    try:
        import torch.cuda.amp as cuda_amp

        cuda_amp.autocast = lambda enabled=True, dtype=torch.bfloat16, cache_enabled=True: autocast("cpu", dtype=dtype, enabled=enabled)

        class _Scaler:  # GradScaler without CUDA: the identity scaler
            def __init__(self, *a, **k):
                pass

            def scale(self, loss):
                return loss

            def step(self, opt, *a, **k):
                return opt.step(*a, **k)

            def update(self, *a, **k):
                return None

            def unscale_(self, *a, **k):
                return None

        cuda_amp.GradScaler = _Scaler
        torch.amp.GradScaler = _Scaler
    except ImportError:
        pass


def _shim_dist(torch) -> None:
    import torch.distributed as dist

    real = dist.init_process_group

    def init_process_group(backend=None, *a, **k):
        k.pop("device_id", None)
        if backend is None or "nccl" in str(backend):
            backend = "gloo"
        return real(backend, *a, **k)

    dist.init_process_group = init_process_group


def _flash(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, *a, **kw):
    """flash-attn layout [B, T, H, D] (k, v may have fewer heads: GQA) → SDPA's [B, H, T, D]."""
    import torch.nn.functional as F

    qt, kt, vt = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    if kt.shape[1] != qt.shape[1]:
        rep = qt.shape[1] // kt.shape[1]
        kt, vt = kt.repeat_interleave(rep, dim=1), vt.repeat_interleave(rep, dim=1)
    out = F.scaled_dot_product_attention(qt, kt, vt, is_causal=bool(causal), scale=softmax_scale)
    return out.transpose(1, 2)


def _flash_qkvpacked(qkv, dropout_p=0.0, softmax_scale=None, causal=False, *a, **kw):
    return _flash(qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2], softmax_scale=softmax_scale, causal=causal)


def _flash_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None, dropout_p=0.0, softmax_scale=None,
                  causal=False, *a, **kw):
    """flash-attn's packed variable-length form: q, k, v are [total, H, D], sequence i is rows
    cu_seqlens[i]:cu_seqlens[i + 1]; each attends within itself only."""
    out = q.new_zeros(q.shape[0], q.shape[1], v.shape[-1])
    cq, ck = [int(x) for x in cu_seqlens_q.tolist()], [int(x) for x in cu_seqlens_k.tolist()]
    for qs, qe, ks, ke in zip(cq[:-1], cq[1:], ck[:-1], ck[1:]):
        if qe > qs and ke > ks:
            out[qs:qe] = _flash(q[None, qs:qe], k[None, ks:ke], v[None, ks:ke], softmax_scale=softmax_scale, causal=causal)[0]
    return out


def _shim_flash() -> None:
    for name in ("flash_attn", "flash_attn_interface", "flash_attn.flash_attn_interface", "flash_attn_3", "flash_attn_3.flash_attn_interface",
                 "hopper", "hopper.flash_attn_interface"):
        if name in sys.modules:
            continue
        m = types.ModuleType(name)
        m.flash_attn_func = _flash
        m.flash_attn_qkvpacked_func = _flash_qkvpacked
        m.flash_attn_varlen_func = _flash_varlen
        m.__version__ = "pgolf-cpu-layer"
        m.__path__ = []  # a package, so its submodules import
        sys.modules[name] = m
        if "." in name:
            parent, _, child = name.rpartition(".")
            setattr(sys.modules[parent], child, m)


def _shim_compile(torch) -> None:
    def compile(model=None, *a, **k):  # noqa: A001
        if model is None:  # used as @torch.compile(...)
            return lambda f: f
        return model

    torch.compile = compile

    # Compiled CUDA graphs let a record reuse tensors made under inference_mode (rotary caches) in a later
    # backward (TTT); eager CPU refuses. no_grad keeps the semantics the probe needs (no gradients).
    class inference_mode(torch.no_grad):  # noqa: N801
        def __init__(self, mode=True):
            super().__init__()

    torch.inference_mode = inference_mode
    try:
        import torch._dynamo as dynamo

        dynamo.config.suppress_errors = True
    except Exception:
        pass


def _shim_nvidia_smi() -> None:
    """Records log ``nvidia-smi`` output: answer it with an empty report instead of a missing binary. Records
    that measure their code minified (``pyminify … -`` on stdin, for the artifact size) get their input back:
    the probe checks the eval, not the size."""
    import subprocess

    real_run, real_out = subprocess.run, subprocess.check_output

    def _tool(args) -> str | None:
        a = args if isinstance(args, (list, tuple)) else str(args).split()
        name = os.path.basename(str(a[0])) if a else ""
        return name if name in ("nvidia-smi", "pyminify") else None

    def _answer(tool: str, k: dict):
        text = k.get("text") or k.get("universal_newlines") or k.get("encoding")
        given = k.get("input")
        if tool == "pyminify" and given is not None:
            return given
        return "" if text else b""

    def run(args, *a, **k):
        tool = _tool(args)
        if tool:
            out = _answer(tool, k)
            return subprocess.CompletedProcess(args, 0, out, out[:0])
        return real_run(args, *a, **k)

    def check_output(args, *a, **k):
        tool = _tool(args)
        if tool:
            return _answer(tool, k)
        return real_out(args, *a, **k)

    subprocess.run, subprocess.check_output = run, check_output


def install() -> None:
    # before the record imports triton: its kernels run in triton's CPU interpreter (numpy), when triton is installed
    os.environ.setdefault("TRITON_INTERPRET", "1")
    import torch
    import torch._dynamo  # noqa: F401  (before the shims: dynamo's rule tables must see torch's own functions)
    import torch.optim  # noqa: F401

    _shim_nvidia_smi()

    _shim_cuda(torch)
    _shim_autocast(torch)
    _shim_dist(torch)
    _shim_flash()
    _shim_compile(torch)
    torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
    _device_mode().__enter__()  # for the whole process: every torch call sees CPU devices
    _devices_in_threads()


def _devices_in_threads() -> None:
    """Torch function modes are per thread: a record's loader thread (``pin_memory()`` in a prefetch
    thread, ThreadPoolExecutor workers) enters its own CPU-device mode when it starts."""
    import threading

    inner = getattr(threading.Thread, "_bootstrap_inner", None)
    if inner is None:
        return

    def _bootstrap_inner(self):
        with _device_mode():  # left when the thread ends (a mode still entered at interpreter exit aborts it)
            return inner(self)

    threading.Thread._bootstrap_inner = _bootstrap_inner


def _run_toy(script: str) -> None:
    """Run SCRIPT as ``__main__``; hard-coded eval-cache tables are shrunk first (``cpu_toy.toy_source``: the
    toy size the env knobs give the others), in memory, each on its own line."""
    from auditor.reproduce.cpu_toy import toy_bucket_env, toy_source

    with open(script, encoding="utf-8") as f:
        text = f.read()
    os.environ.update(toy_bucket_env(text, dict(os.environ)))  # a script that refuses fewer buckets gets its floor
    toy = toy_source(text)
    if toy == text:
        runpy.run_path(script, run_name="__main__")
        return
    import builtins

    mod = types.ModuleType("__main__")
    mod.__file__ = os.path.abspath(script)
    mod.__builtins__ = builtins
    sys.modules["__main__"] = mod
    exec(compile(toy, script, "exec"), mod.__dict__)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m auditor.reproduce.cpu_layer SCRIPT [ARGS]", file=sys.stderr)
        return 2
    install()
    script = argv[0]
    sys.argv = list(argv)
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        _run_toy(script)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "triton":
            print(f"pgolf-cpu-layer: {CPU_REASON_TRITON}", file=sys.stderr)
            return 3
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
