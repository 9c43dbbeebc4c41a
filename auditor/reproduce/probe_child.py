"""The probe child: import an instrumented scorer copy and call it on each token stream of a spec.

``python -m auditor.reproduce.probe_child SPEC.json OUT.json``. Runs inside the sandbox; the only
process that executes the probed code.
"""
from __future__ import annotations

import importlib.util
import inspect
import json
import sys
import traceback

VOCAB_PARAMS = ("vocab_size", "vocab", "n_vocab", "V")
MODEL_PARAMS = ("logprob_fn", "model", "logits_fn", "lm")
CONFIG_PARAMS = ("cfg", "config")


class ToyModel:
    """A prefix-only bigram model (add-0.5 counts of a fixed stream): the `logprob_fn` a mixing
    scorer expects. ``batch(tokens, start, end)`` gives rows for targets start..end-1."""

    def __init__(self, vocab: int):
        import numpy as np

        rng = np.random.default_rng(1)
        t = rng.integers(0, vocab, 4 * vocab * vocab)
        c = np.full((vocab, vocab), 0.5)
        np.add.at(c, (t[:-1], t[1:]), 1.0)
        self.logp = np.log(c / c.sum(axis=1, keepdims=True))
        self.vocab = vocab

    def __call__(self, prefix):
        import numpy as np

        return self.logp[int(prefix[-1])] if len(prefix) else np.full(self.vocab, -np.log(self.vocab))

    def batch(self, tokens, start, end):
        import numpy as np

        return self.logp[np.asarray(tokens)[start - 1:end - 1]]


def _config(mod, vocab: int, wanted: dict):
    """The scorer's own config dataclass, shrunk: any class with a vocab_size field."""
    import dataclasses

    for obj in vars(mod).values():
        if isinstance(obj, type) and dataclasses.is_dataclass(obj):
            names = {f.name for f in dataclasses.fields(obj)}
            if "vocab_size" in names:
                return obj(vocab_size=vocab, **{k: v for k, v in wanted.items() if k in names})
    raise TypeError("the scorer takes a config, but its module defines no dataclass with a vocab_size field")


def main(spec_path: str, out_path: str) -> int:
    import numpy as np

    from auditor.reproduce import probe_runtime as rt

    spec = json.load(open(spec_path))
    out: dict = {"calls": [], "error": None}
    try:
        sys.path.insert(0, spec["module_dir"])
        for extra in spec.get("path", []):
            sys.path.append(extra)
        mspec = importlib.util.spec_from_file_location("pgolf_probe_target", spec["module"])
        mod = importlib.util.module_from_spec(mspec)
        sys.modules["pgolf_probe_target"] = mod
        mspec.loader.exec_module(mod)
        fn = getattr(mod, spec["function"])
        params = inspect.signature(fn).parameters
        kwargs = dict(spec.get("kwargs", {}))
        for name in params:
            if name in VOCAB_PARAMS:
                kwargs[name] = spec["vocab"]
            elif name in MODEL_PARAMS:
                kwargs[name] = ToyModel(spec["vocab"])
            elif name in CONFIG_PARAMS:
                kwargs[name] = _config(mod, spec["vocab"], spec.get("config", {}))
        kwargs = {k: v for k, v in kwargs.items() if k in params or any(p.kind is p.VAR_KEYWORD for p in params.values())}
        out["called_with"] = {k: (repr(v) if not isinstance(v, ToyModel) else "a prefix-only bigram model") for k, v in kwargs.items()}
        for tokens in spec["calls"]:
            rt.reset()
            ret = fn(np.asarray(tokens, dtype=np.int64), **kwargs)
            out["calls"].append({"events": list(rt.EVENTS), "returned": rt._floats(ret) if ret is not None else None})
    except BaseException as exc:  # reported to the parent as one line plus the trace
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["trace"] = traceback.format_exc()[-2000:]
    json.dump(out, open(out_path, "w"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
