"""The replayed clock, installed as ``sitecustomize`` inside the sandbox (see clock.py).

Copied into the seed's run directory as ``sitecustomize.py`` and put first on the record's
PYTHONPATH, so the record's own file is never edited. Standard library only at import time;
pgolf's own process never imports it.

Inside a torchrun worker (``LOCAL_RANK`` set) the record's ``time.time``, ``time.perf_counter``,
``time.monotonic`` (and their ``_ns`` twins) stop following the real clock. They advance by
``PGOLF_CLOCK_MS_PER_STEP`` at each training step, so every time-based schedule (the cap itself,
a warm-down, a QAT start, an EMA window, a GPTQ reserve) sees the entrant's machine, whatever the
speed of this one. ``torch.cuda.Event.elapsed_time`` follows the same clock.

A training step is observed as an optimizer step: torch's global optimizer pre-hook fires for
every ``torch.optim.Optimizer`` subclass (Muon included). One training step usually steps
several optimizers (Adam for embeddings, Muon for matrices, ...), so a step starts when an
optimizer steps that has already stepped since the last step started; the first optimizer of
each step therefore advances the clock, before the record reads the time after its step.

Between steps the clock stands still, so an evaluation inside the loop costs no replayed time
(records exclude it from train_time anyway). When no step has come for ``PGOLF_CLOCK_IDLE_S``
seconds (default 60, at least 20× the recent real step time) the clock moves at the real rate
again, so a wait on time (a queue timeout, a barrier) can never hang, and a long final
evaluation is timed. The real time of every step is kept and written to
``PGOLF_CLOCK_OUT/clock_rank<R>.json`` for pgolf's throughput verdict.

Children of the worker (DataLoader workers, compile workers) keep the real clock: a forked
child is switched back at fork, a spawned one sees that it is not the owner.
"""
import json
import os
import sys
import threading
import time as _time

# Modules that bind time functions at import must bind the real ones.
import queue  # noqa: F401
import subprocess  # noqa: F401

_real_perf = _time.perf_counter
_real_mono = _time.monotonic
_real_time = _time.time
_real_perf_ns = _time.perf_counter_ns
_real_mono_ns = _time.monotonic_ns
_real_time_ns = _time.time_ns


class _Clock:
    def __init__(self, ms_per_step, idle_s, out_dir, rank):
        self.d = ms_per_step / 1000.0
        self.idle_min = idle_s
        self.out_dir = out_dir
        self.rank = rank
        self.lock = threading.Lock()
        self.base_perf, self.base_mono, self.base_time = _real_perf(), _real_mono(), _real_time()
        self.v_last = 0.0  # replayed seconds since start, at the last step
        self.r_last = self.base_perf  # real perf_counter at the last step (or at start)
        self.leaked = 0.0
        self.steps = 0
        self.stepped = set()  # ids of the optimizers stepped since the current step started
        self.intervals = []  # real seconds between consecutive steps
        self.first_step_real = None
        self.last_step_real = None
        self.last_write = self.base_perf
        self.active = True

    def idle_s(self):
        recent = sorted(self.intervals[-64:])
        med = recent[len(recent) // 2] if recent else 0.0
        return max(self.idle_min, 20.0 * med)

    def now(self):
        """Replayed seconds since start."""
        if not self.active:
            return _real_perf() - self.base_perf
        with self.lock:
            gap = _real_perf() - self.r_last
            return self.v_last + max(0.0, gap - self.idle_s())

    def on_optimizer_step(self, opt):
        key = id(opt)
        with self.lock:
            if self.stepped and key not in self.stepped:
                self.stepped.add(key)  # another optimizer of the same training step
                return
            self.stepped = {key}
            real = _real_perf()
            gap = real - self.r_last
            leak = max(0.0, gap - self.idle_s())
            self.leaked += leak
            self.v_last = self.v_last + leak + self.d
            if self.last_step_real is not None:
                self.intervals.append(gap)
                if len(self.intervals) > 200_000:
                    del self.intervals[:100_000]
            else:
                self.first_step_real = real
            self.last_step_real = real
            self.r_last = real
            self.steps += 1
            due = real - self.last_write > 2.0
        if due:
            self.write()

    def write(self):
        if not self.out_dir:
            return
        with self.lock:
            self.last_write = _real_perf()
            data = {"rank": self.rank, "pid": os.getpid(), "ms_per_step": self.d * 1000.0, "steps": self.steps,
                    "idle_s": self.idle_s(), "leaked_s": self.leaked, "replayed_s": self.v_last,
                    "real_s": _real_perf() - self.base_perf,
                    "real_first_to_last_step_s": (self.last_step_real - self.first_step_real) if self.steps > 1 else None,
                    "real_step_intervals_ms": [round(x * 1000.0, 3) for x in self.intervals]}
        path = os.path.join(self.out_dir, f"clock_rank{self.rank}.json")
        try:
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(path + ".tmp", path)
        except OSError:
            pass


_clock = None


def _perf():
    return _clock.base_perf + _clock.now()


def _mono():
    return _clock.base_mono + _clock.now()


def _wall():
    return _clock.base_time + _clock.now()


def _perf_ns():
    return int(_perf() * 1e9)


def _mono_ns():
    return int(_mono() * 1e9)


def _wall_ns():
    return int(_wall() * 1e9)


def _patch_torch(torch):
    try:
        from torch.optim.optimizer import register_optimizer_step_pre_hook

        register_optimizer_step_pre_hook(lambda opt, args, kwargs: _clock.on_optimizer_step(opt))
    except Exception as exc:  # an old torch: say so in the log rather than replay a frozen clock silently
        print(f"pgolf clock: cannot hook optimizer steps ({exc}); the replayed clock will not advance", file=sys.stderr)
    try:
        base = torch.cuda.Event

        class ReplayedEvent(base):
            """elapsed_time between two recorded events, in replayed milliseconds."""

            def record(self, stream=None):
                self._pgolf_v = _clock.now()
                return super().record(stream) if stream is not None else super().record()

            def elapsed_time(self, end_event):
                a, b = getattr(self, "_pgolf_v", None), getattr(end_event, "_pgolf_v", None)
                if a is not None and b is not None:
                    return (b - a) * 1000.0
                return super().elapsed_time(end_event)

        torch.cuda.Event = ReplayedEvent
    except Exception:
        pass


class _TorchFinder:
    """Patches torch right after it is imported; importing it here would change the record's import order."""

    def find_spec(self, name, path=None, target=None):
        if name != "torch":
            return None
        sys.meta_path.remove(self)
        try:
            import importlib.util

            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module):
            original(module)
            sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
            _patch_torch(module)

        loader.exec_module = exec_module
        return spec


def _after_fork_in_child():
    if _clock is not None:
        _clock.active = False
        _clock.out_dir = None


def _install():
    global _clock
    env = os.environ
    try:
        ms = float(env.get("PGOLF_CLOCK_MS_PER_STEP", ""))
    except ValueError:
        return
    if "LOCAL_RANK" not in env or ms <= 0:
        return  # the torchrun launcher and plain tools keep the real clock
    owner = env.get("PGOLF_CLOCK_OWNER")
    if owner and owner != str(os.getpid()):
        return  # a process the worker spawned
    env["PGOLF_CLOCK_OWNER"] = str(os.getpid())
    _clock = _Clock(ms, float(env.get("PGOLF_CLOCK_IDLE_S", "60") or 60), env.get("PGOLF_CLOCK_OUT"), env.get("RANK", "0"))
    _time.perf_counter, _time.monotonic, _time.time = _perf, _mono, _wall
    _time.perf_counter_ns, _time.monotonic_ns, _time.time_ns = _perf_ns, _mono_ns, _wall_ns
    os.register_at_fork(after_in_child=_after_fork_in_child)
    import atexit

    atexit.register(_clock.write)
    if "torch" in sys.modules:
        _patch_torch(sys.modules["torch"])
    else:
        sys.meta_path.insert(0, _TorchFinder())


def _chain_next_sitecustomize():
    """Run the sitecustomize this file shadows, if the interpreter has one."""
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if not entry or os.path.abspath(entry) == here:
            continue
        cand = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(cand):
            try:
                with open(cand, encoding="utf-8") as f:
                    exec(compile(f.read(), cand, "exec"), {"__name__": "sitecustomize_chained", "__file__": cand})
            except Exception as exc:
                print(f"pgolf clock: {cand}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return


_chain_next_sitecustomize()
_install()
