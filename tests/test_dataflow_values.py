"""The engine follows values, not names: each shape here was found by the metamorphic benchmark on a
real labelled folder (benchmarks/bench_metamorphic.py), reduced to our own small program, and is
checked both as written and after the metamorphic rewrites that used to lose it."""
from __future__ import annotations

import textwrap

import pytest

from rules import _eval_cases as cases
from rules.analysis.config import RunConfig
from rules.analysis.dataflow import Taint, build_taint
from rules.analysis.facts import build_code_facts
from rules.analysis.index import file_facts
from rules.analysis.logs import LogFacts
from tests.helpers import audit_one, write_folder
from tests.metamorphic.rewrite import mutate

ERROR_RULES = ("EVAL", "NGRAM", "TTT", "SLOT", "ORACLE", "DATA", "NET")


def errors(tmp_path, text, rules=None):
    rec = audit_one(write_folder(tmp_path, {"train_gpt.py": text}), **({"only_rules": set(rules)} if rules else {}))
    return sorted({f.rule for f in rec.findings if f.severity.value == "error" and f.rule.startswith(ERROR_RULES)})


def taint_of(text):
    facts = build_code_facts([file_facts("train_gpt.py", text)], {}, RunConfig(), LogFacts())
    return build_taint(facts)


def renamed(text, transforms=("rename_locals",), seed=0):
    m = mutate({"train_gpt.py": text}, seed, list(transforms))
    assert m.applied, "the rewrite found nothing to rename"
    return m.files["train_gpt.py"]


# -- the validation stream from a loader the program defines ------------------------------------------

_OWN_LOADER = cases.ILLEGAL_NGRAM.replace('val_tokens = torch.load("val.pt")',
                                          'val_tokens = load_validation_tokens("data/fineweb_val_*.bin")').replace(
    "\ndef eval_val_ngram(", '''
def load_validation_tokens(pattern):
    files = sorted(glob.glob(pattern))
    return torch.cat([torch.from_numpy(np.fromfile(f, dtype=np.uint16)) for f in files])


def eval_val_ngram(''').replace("import os, math", "import os, math, glob")


def test_a_program_loader_called_on_a_val_path_returns_the_stream_whatever_its_locals_are_called():
    text = renamed(_OWN_LOADER)
    assert "val_tokens" not in text and "tokens = " not in text  # nothing left to match by name
    tf = taint_of(text)
    assert any(Taint.V in {l[0] for l in labels} for labels in tf.env["main"].values())


@pytest.mark.parametrize("seed", [0, 1])
def test_the_illegal_cache_behind_a_program_loader_survives_renaming(tmp_path, seed):
    assert "NGRAM-TARGET-IN-KEY" in errors(tmp_path / "plain", _OWN_LOADER, {"NGRAM-TARGET-IN-KEY"})
    assert "NGRAM-TARGET-IN-KEY" in errors(tmp_path / "renamed", renamed(_OWN_LOADER, seed=seed), {"NGRAM-TARGET-IN-KEY"})


def test_an_instance_whose_init_stores_the_stream_holds_the_stream():
    text = textwrap.dedent('''
        import torch

        class Holder:
            def __init__(self, path):
                self.q = load(path)

        def load(pattern):
            return torch.load(pattern)

        def main():
            h = Holder("data/fineweb_val_000.bin")
            other = Holder2()
            return h, other

        class Holder2:
            def __init__(self):
                self.z = torch.zeros(3)
    ''')
    env = build_taint_env(text, "main")
    assert Taint.V in env["h"]
    assert Taint.V not in env.get("other", set())


def build_taint_env(text, fn):
    tf = taint_of(text)
    return {k: {l[0] for l in v} for k, v in tf.env[fn].items()}


# -- training data read after the loop, through a renamed parameter -------------------------------

_GPTQ_PARAM = textwrap.dedent('''
    import glob, numpy as np, torch

    class Hyperparameters:
        train_files = "data/fineweb_train_*.bin"
        val_files = "data/fineweb_val_*.bin"

    class TokenStream:
        def __init__(self, pattern):
            self.files = sorted(glob.glob(pattern))

        def take(self, n):
            return torch.from_numpy(np.fromfile(self.files[0], dtype=np.uint16)[:n])

    def calibrate(model, pattern, n):
        stream = TokenStream(pattern)
        return [model(stream.take(1024)) for _ in range(n)]

    def main(model, opt, loader, val_tokens, steps):
        args = Hyperparameters()
        for step in range(steps):
            loss = model(loader.next_batch())
            loss.backward()
            opt.step()
        hessians = calibrate(model, args.train_files, 8)
        return model(val_tokens).mean()

    if __name__ == "__main__":
        main(None, None, None, None, 0)
''')


def test_training_data_read_after_the_loop_through_a_parameter_of_any_name(tmp_path):
    text = _GPTQ_PARAM.replace("def calibrate(model, pattern, n)", "def calibrate(model, train_pattern, n)") \
        .replace("TokenStream(pattern)", "TokenStream(train_pattern)")
    assert errors(tmp_path / "named", text, {"DATA-NO-TRAIN-AT-EVAL"}) == ["DATA-NO-TRAIN-AT-EVAL"]
    assert errors(tmp_path / "plain", _GPTQ_PARAM, {"DATA-NO-TRAIN-AT-EVAL"}) == ["DATA-NO-TRAIN-AT-EVAL"]
    assert errors(tmp_path / "renamed", renamed(_GPTQ_PARAM, ("rename_locals", "rename_functions")),
                  {"DATA-NO-TRAIN-AT-EVAL"}) == ["DATA-NO-TRAIN-AT-EVAL"]


def test_a_loop_that_steps_on_the_validation_stream_is_not_the_training_loop(tmp_path):
    # a long adaptation loop on val tokens in a function whose name says nothing: the training loop is
    # still main's, so the calibration after it is still after the window
    adapt = textwrap.dedent('''
        def adjust(model, opt, toks, epochs):
            for ep in range(epochs):
                for s in range(0, len(toks) - 1025, 1024):
                    x = toks[s:s + 1024]
                    y = toks[s + 1:s + 1025]
                    out = model(x)
                    if out is None:
                        continue
                    loss = torch.nn.functional.cross_entropy(out, y)
                    loss.backward()
                    opt.step()
                    opt.zero_grad()
                    print(ep, s, float(loss))
                    print("more lines to make this loop the longest one")
                    print("more lines to make this loop the longest one")
                    print("more lines to make this loop the longest one")
    ''')
    text = _GPTQ_PARAM.replace("\ndef main(", adapt + "\n\ndef main(").replace(
        "    return model(val_tokens).mean()", "    adjust(model, opt, val_tokens, 2)\n    return model(val_tokens).mean()")
    text = text.replace('def main(model, opt, loader, val_tokens, steps):\n    args = Hyperparameters()',
                        'def main(model, opt, loader, val_tokens, steps):\n    args = Hyperparameters()\n'
                        '    val_tokens = torch.load(args.val_files)')
    assert errors(tmp_path, text, {"DATA-NO-TRAIN-AT-EVAL"}) == ["DATA-NO-TRAIN-AT-EVAL"]


def test_a_log_called_through_a_local_alias_is_the_log(tmp_path):
    text = cases.ILLEGAL_NGRAM.replace("    loss_sum = 0.0\n", "    loss_sum = 0.0\n    _lg = np.log\n", 1) \
        .replace("loss_sum += -np.log(p).sum()", "loss_sum += -_lg(p).sum()")
    assert "_lg(p)" in text
    assert errors(tmp_path / "plain", text, {"NGRAM-TARGET-IN-KEY"}) == ["NGRAM-TARGET-IN-KEY"]
    assert errors(tmp_path / "renamed", renamed(text), {"NGRAM-TARGET-IN-KEY"}) == ["NGRAM-TARGET-IN-KEY"]


def test_training_batches_from_a_loader_over_val_built_in_a_helper(tmp_path):
    from rules.data_no_val_in_train import _VAL_LOADER

    # the loader construction moved into a helper: the loop still draws its batches from the val stream
    text = _VAL_LOADER.replace("    loader = DistributedTokenLoader(val_files, 0, 8)\n",
                               "    loader = make_loader(DistributedTokenLoader, val_files)\n") + \
        "\n\ndef make_loader(cls, where):\n    return cls(where, 0, 8)\n"
    assert "DistributedTokenLoader(val_files" not in text
    assert errors(tmp_path / "helper", text, {"DATA-NO-VAL-IN-TRAIN"}) == ["DATA-NO-VAL-IN-TRAIN"]
    clean = text.replace("make_loader(DistributedTokenLoader, val_files)", "make_loader(DistributedTokenLoader, train_files)")
    assert errors(tmp_path / "train", clean, {"DATA-NO-VAL-IN-TRAIN"}) == []


_CALIB_ON_LOADER = textwrap.dedent('''
    import glob, numpy as np, torch

    class Hyperparameters:
        train_files = "data/fineweb_train_*.bin"

    class ShardLoader:
        def __init__(self, pattern):
            self.files = sorted(glob.glob(pattern))
            self.pos = 0

        def draw(self, n):
            self.pos += n
            return torch.from_numpy(np.fromfile(self.files[0], dtype=np.uint16)[self.pos - n:self.pos])

    def collect(model, loader, n):
        return [model(loader.draw(1024)) for _ in range(n)]

    def evaluate(model, toks):
        tot = 0.0
        for i in range(0, len(toks) - 1025, 1024):
            tot += torch.nn.functional.cross_entropy(model(toks[i:i + 1024]), toks[i + 1:i + 1025]).item()
        return tot

    def main(model, opt, steps):
        args = Hyperparameters()
        val = torch.from_numpy(np.fromfile("data/fineweb_val_000000.bin", dtype=np.uint16))
        loader = ShardLoader(args.train_files)
        for step in range(steps):
            loss = model(loader.draw(1024))
            loss.backward()
            opt.step()
        stats = collect(model, loader, 8)
        return evaluate(model, val)

    if __name__ == "__main__":
        main(None, None, 0)
''')


@pytest.mark.parametrize("transforms", [(), ("rename_attributes",), ("rename_attributes", "rename_locals", "rename_functions")])
def test_calibration_batches_drawn_from_the_training_loader_after_the_loop(tmp_path, transforms):
    text = renamed(_CALIB_ON_LOADER, transforms) if transforms else _CALIB_ON_LOADER
    assert transforms == () or "draw" not in text or "rename_attributes" not in transforms
    assert errors(tmp_path, text, {"DATA-NO-TRAIN-AT-EVAL"}) == ["DATA-NO-TRAIN-AT-EVAL"]


def test_positions_of_the_next_tokens_spelled_as_an_offset_arange(tmp_path):
    # ``vt[arange(a, b) + start + 1]`` (#972): the stream at the next positions is the target
    text = cases.ILLEGAL_NGRAM.replace("y = val_tokens[pos]", "nxt = np.arange(0, 256) + (s - 1) + 1\n        y = val_tokens[nxt]")
    assert "val_tokens[pos]" not in text
    assert errors(tmp_path / "plain", text, {"NGRAM-TARGET-IN-KEY"}) == ["NGRAM-TARGET-IN-KEY"]
    assert errors(tmp_path / "renamed", renamed(text), {"NGRAM-TARGET-IN-KEY"}) == ["NGRAM-TARGET-IN-KEY"]


def test_a_calibration_pass_with_a_reserve_is_known_by_what_it_feeds_not_its_name(tmp_path):
    text = _CALIB_ON_LOADER.replace("import glob, numpy", "GPTQ_RESERVE_SECONDS = 12.0\nimport glob, numpy")
    for t in (text, renamed(text, ("rename_locals", "rename_functions", "rename_attributes"))):
        rec = audit_one(write_folder(tmp_path / str(len(t)), {"train_gpt.py": t}), only_rules={"DATA-NO-TRAIN-AT-EVAL"})
        got = {(f.severity.value, "calibration" in f.message) for f in rec.findings}
        assert got == {("info", True)}, got
    # the same read feeding the scored value is no calibration, reserve or not
    scored = text.replace("    stats = collect(model, loader, 8)\n    return evaluate(model, val)",
                          "    return evaluate(model, val) + collect(model, loader, 8)[0].mean()")
    assert "stats" not in scored
    rec = audit_one(write_folder(tmp_path / "scored", {"train_gpt.py": scored}), only_rules={"DATA-NO-TRAIN-AT-EVAL"})
    assert any(f.severity.value in ("error", "warning") for f in rec.findings)


def test_a_dead_copy_of_a_transform_does_not_hide_the_live_one(tmp_path):
    # the metamorphic dead-code rewrite puts ``if False: p = <same transform>`` after the live line
    text = textwrap.dedent('''
        import numpy as np, torch
        import torch.nn.functional as F


        def prob(lg, prev, nxt, counts):
            frac = counts[prev] / (counts[prev].sum(-1, keepdim=True) + 1.0)
            p = F.softmax(lg, -1) * (1.0 + 0.2 * frac)
            if False:
                p = F.softmax(lg, -1) * (1.0 + 0.2 * frac)
            return p.gather(1, nxt[:, None]).squeeze(1)


        def main():
            model = torch.load("model.pt")
            val_tokens = torch.load("val.pt")
            counts = torch.zeros(1024, 1024)
            nll_sum = 0.0
            for s in range(0, len(val_tokens) - 257, 256):
                x = val_tokens[s:s + 256]
                y = val_tokens[s + 1:s + 257]
                p = prob(model(x), x, y, counts)
                nll_sum += float(-torch.log(p).sum())
            print(f"final_int8_zlib_roundtrip_exact val_loss:{nll_sum:.4f} val_bpb:{nll_sum:.4f}")


        if __name__ == "__main__":
            main()
    ''')
    rec = audit_one(write_folder(tmp_path, {"train_gpt.py": text}), only_rules={"EVAL-NORMALIZED-DIST"})
    got = sorted((f.severity.value, f.line) for f in rec.findings)
    live = text.split("\n").index("    p = F.softmax(lg, -1) * (1.0 + 0.2 * frac)") + 1
    assert ("error", live) in got, got


def test_a_mixture_weight_is_a_hyperparameter_whatever_holds_it(tmp_path):
    # ``(1 - cfg.mix_w) * softmax + cfg.mix_w * counts / counts.sum()`` is a convex mixture: legal, also
    # once ``args`` is renamed (the field is declared in a class body)
    text = textwrap.dedent('''
        import os, torch
        import torch.nn.functional as F


        class Hyperparameters:
            mix_w = float(os.environ.get("MIX_W", "0.1"))


        def bigram_eval(args, model, val_tokens):
            counts = torch.zeros(1024, 1024)
            nll = 0.0
            for s in range(0, val_tokens.numel() - 257, 256):
                chunk = val_tokens[s:s + 257]
                x, y = chunk[:-1], chunk[1:]
                c = counts[x] + 0.5
                p = (1 - args.mix_w) * F.softmax(model(x[None])[0], dim=-1) + args.mix_w * c / c.sum(dim=-1, keepdim=True)
                nll += float(-torch.log(p.gather(1, y[:, None])).sum())
                counts.index_put_((x, y), torch.ones_like(x, dtype=counts.dtype), accumulate=True)
            return nll


        def main():
            args = Hyperparameters()
            model = torch.load("model.pt")
            val_tokens = torch.load("val.pt")
            print(f"final_int8_zlib_roundtrip_exact val_loss:{bigram_eval(args, model, val_tokens):.4f} val_bpb:1.0")


        if __name__ == "__main__":
            main()
    ''')
    assert errors(tmp_path / "plain", text, {"EVAL-NORMALIZED-DIST"}) == []
    mutated = renamed(text)
    assert "args.mix_w" not in mutated
    assert errors(tmp_path / "renamed", mutated, {"EVAL-NORMALIZED-DIST"}) == []


def test_a_compile_warmup_on_random_tokens_is_not_the_training_loop(tmp_path):
    warm = textwrap.dedent('''
        def prime(model, opt, n):
            for i in range(n):
                x = torch.randint(0, 1024, (4, 128))
                y = torch.randint(0, 1024, (4, 128))
                out = model(x, y)
                out.backward()
                opt.step()
                opt.zero_grad()
                print("a longer loop than the training loop", i)
                print("a longer loop than the training loop", i)
                print("a longer loop than the training loop", i)
    ''')
    text = _GPTQ_PARAM.replace("\ndef main(", warm + "\n\ndef main(").replace(
        "        opt.step()\n    hessians", "        opt.step()\n    prime(model, opt, 2)\n    hessians")
    assert "prime(model, opt, 2)" in text
    assert errors(tmp_path, text, {"DATA-NO-TRAIN-AT-EVAL"}) == ["DATA-NO-TRAIN-AT-EVAL"]


def test_a_config_that_stores_a_val_path_does_not_hold_the_stream():
    # PR #1710: ``self.val_files = os.path.join(d, "fineweb_val_*.bin")`` in Hyperparameters.__init__ made
    # every ``args`` the validation stream (a false TTT-PREQUANT on the training warmup)
    text = textwrap.dedent('''
        import os, glob, torch

        class Config:
            def __init__(self):
                self.data_dir = os.environ.get("DATA_DIR", "data")
                self.val_files = os.path.join(self.data_dir, "fineweb_val_*.bin")
                self.shards = sorted(glob.glob(os.path.join(self.data_dir, "fineweb_val_*.bin")))

        class Holder:
            def __init__(self, cfg):
                self.q = torch.load(cfg.val_files)

        def main():
            cfg = Config()
            h = Holder(cfg)
            return cfg, h
    ''')
    env = build_taint_env(text, "main")
    assert Taint.V not in env.get("cfg", set())
    assert Taint.V in env["h"]


_NESTED_STEP = textwrap.dedent("""
    import glob, numpy as np, torch

    class Hyperparameters:
        train_files = "data/fineweb_train_*.bin"

    class Loader:
        def __init__(self, pattern):
            self.files = sorted(glob.glob(pattern))

        def next_batch(self, n):
            return torch.from_numpy(np.fromfile(self.files[0], dtype=np.uint16)[:n])

    def train_model(model, opt, steps, accum):
        args = Hyperparameters()
        train_loader = Loader(args.train_files)

        def step_fn(step):
            for micro in range(accum):
                x = train_loader.next_batch(1024)
                model(x).backward()
                if micro == accum - 1:
                    opt.step()
                    opt.zero_grad()

        step = 0
        while True:
            step_fn(step)
            extra = train_loader.next_batch(64)
            step += 1
            if step >= steps:
                break
        return model

    if __name__ == "__main__":
        train_model(None, None, 0, 1)
""")


def test_the_training_loop_is_the_loop_that_calls_a_nested_step_function(tmp_path):
    # PR #1818 (found by H6): the grad-accumulation loop of a nested ``step_fn`` was taken as the training
    # loop, so the real loop's batches read "after the loop" were errors
    assert errors(tmp_path, _NESTED_STEP, {"DATA-NO-TRAIN-AT-EVAL"}) == []


# -- a local computed as a float ratio is not a token, whatever it is called (PR #1812) ----------------

_QUOTA_LOADER = textwrap.dedent('''
    import numpy as np
    import torch
    import torch.nn.functional as F

    _OPEN = {}


    def _open(path):
        key = str(path)
        got = _OPEN.get(key)
        if got is not None:
            return got
        got = np.memmap(path, mode="r", dtype="<u2")
        _OPEN[key] = got
        return got


    class Loader:
        def __init__(self, paths, n):
            self.paths, self.n = paths, n
            self.left = [list(range(100)) for _ in paths]

        def next_batch(self, rows):
            remaining = np.array([len(s) for s in self.left], dtype=np.float64)
            {name} = rows * remaining / remaining.sum()
            quotas = np.floor({name}).astype(np.int64)
            plan = np.concatenate([np.full(int(q), s) for s, q in enumerate(quotas)])
            xs, ys = [], []
            for b in range(rows):
                si = int(plan[b])
                mm = _open(self.paths[si])
                w = torch.as_tensor(np.array(mm[0:self.n + 1], dtype=np.int64))
                xs.append(w[:-1])
                ys.append(w[1:])
            return torch.stack(xs), torch.stack(ys)


    def main():
        model = torch.nn.Linear(8, 8)
        loader = Loader(["data/fineweb_train_000.bin"], 64)
        train_loss = 0.0
        for step in range(10):
            x, y = loader.next_batch(8)
            loss = F.cross_entropy(model(x), y)
            train_loss += loss.detach()
''')


@pytest.mark.parametrize("name", ["target", "share"])
def test_a_float_quota_is_not_the_target_whatever_it_is_called(tmp_path, name):
    text = _QUOTA_LOADER.replace("{name}", name)
    assert not taint_of(text).key_reads
    assert errors(tmp_path, text) == []


def test_a_target_local_that_holds_tokens_is_still_the_target():
    # the same name bound to an integer slice of the batch keeps its meaning
    text = _QUOTA_LOADER.replace("{name}", "share").replace(
        "mm = _open(self.paths[si])", "target = _open(self.paths[0])[1:]\n            mm = _OPEN.get(target)")
    assert taint_of(text).key_reads


# -- an update over a slice range is not a keyed table update (PR #1013's GPTQ ``W[:, i2:] -= Err @ Hinv``) --

_SLICE_UPDATE = textwrap.dedent('''
    import torch

    def byte_count(prev, nxt, lead, bound):
        nb = lead[nxt] & ~bound[prev]
        return nb.sum()

    def squeeze(W, Hm, width):
        for i1 in range(0, W.shape[1], width):
            i2 = min(i1 + width, W.shape[1])
            E = W[:, i1:i2].clone()
            {update}
        return W

    def main():
        s = torch.load("val.pt")
        x, y = s[:-1], s[1:]
        width = byte_count(x, y, torch.ones(1024, dtype=torch.bool), torch.zeros(1024, dtype=torch.bool))
        {tail}
''')
_DIRECT = "return squeeze(torch.randn(8, 512), torch.eye(512), width)"
# a nested function whose own parameter has the outer local's name
_NESTED = """print(width)

    def attempt(width):
        return squeeze(torch.randn(8, 512), torch.eye(512), width)

    return [attempt(64), attempt(128)]"""


def _slice_program(update, tail):
    return _SLICE_UPDATE.replace("{update}", update).replace("{tail}", tail)


def test_an_update_over_a_slice_range_is_not_a_keyed_update():
    assert not taint_of(_slice_program("W[:, i2:] -= E @ Hm[i1:i2, i2:]", _DIRECT)).hashed_updates


def test_an_update_at_a_key_built_from_the_same_value_still_is():
    assert taint_of(_slice_program("W[i2, 0] += 1", _DIRECT)).hashed_updates


def test_a_nested_function_does_not_see_the_outer_local_its_own_parameter_shadows():
    tf = taint_of(_slice_program("W[i2, 0] += 1", _NESTED))
    assert tf.env["main"]["width"]  # the outer local does carry the combination
    assert not tf.env.get("main.attempt", {}).get("width")
    assert not tf.hashed_updates


# -- row/column count tables: ``row * V + tok`` into a table V wide is not a hashed key (PR #704, #1879) -------

_PAIR_UPDATE = textwrap.dedent('''
    import torch

    class Table:
        def __init__(self, width, rows):
            self.width = width
            self.rows = rows
            self.cells = torch.zeros(rows, width)

        def add(self, tokens):
            prev = tokens[:-1]
            nxt = tokens[1:]
            {update}

    def main():
        s = torch.load("val.pt")
        Table(1024, 1024).add(s)
''')


@pytest.mark.parametrize("update", [
    "self.cells.view(-1).scatter_add_(0, prev * self.width + nxt, torch.ones(len(nxt)))",
    "self.cells += torch.bincount(prev * self.width + nxt, minlength=self.width * self.rows).view(self.rows, self.width)",
])
def test_a_row_column_update_of_a_table_as_wide_as_the_row_is_no_hashed_key(update):
    assert not taint_of(_PAIR_UPDATE.replace("{update}", update)).hashed_updates


@pytest.mark.parametrize("update", [
    "self.cells.view(-1).scatter_add_(0, (prev * self.width + nxt) % 4096, torch.ones(len(nxt)))",
    "self.cells.view(-1).scatter_add_(0, prev * 1000003 + nxt, torch.ones(len(nxt)))",
    "self.cells += torch.bincount(prev * self.width + nxt, minlength=4096)[:1024 * 1024].view(self.rows, self.width)",
])
def test_a_wrapped_or_foreign_width_pair_index_is_still_a_hashed_key(update):
    assert taint_of(_PAIR_UPDATE.replace("{update}", update)).hashed_updates
