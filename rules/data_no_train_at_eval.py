"""DATA-NO-TRAIN-AT-EVAL (rules.md §1.2)."""
from __future__ import annotations

import re

from auditor.model import Severity
from auditor.policy import UNREACHABLE
from rules.base import Invalid, Rule, Valid, register
from rules.data_access import CALIB_NAME, data_facts

_TRAIN = '''
import glob, numpy as np, torch
train_files = "data/fineweb_train_*.bin"
val_files = "data/fineweb_val_*.bin"

def load_data_shard(path):
    return np.fromfile(path, dtype=np.uint16)

def eval_val(model, tokens):
    return model(tokens).mean()

def main(model, opt, loader, val_tokens, steps):
    for step in range(steps):
        loss = model(loader.next_batch())
        loss.backward()
        opt.step()
{after}

if __name__ == "__main__":
    main(None, None, None, None, 0)
'''
_CLEAN = _TRAIN.format(after="    return eval_val(model, val_tokens)\n")
_GPTQ_AFTER = _TRAIN.format(after="""    hessians = collect_hessians(model, [load_data_shard(f) for f in sorted(glob.glob(train_files))[:1]])
    return eval_val(model, val_tokens)

def collect_hessians(model, batches):
    return [b for b in batches]
""")
# code placed before the training loop in the training function
_PRE = _TRAIN.replace("    for step in range(steps):", "{before}    for step in range(steps):")
_PRE_CLEAN = _PRE.format(after="    return eval_val(model, val_tokens)\n", before="{before}")
# names listed only: a presence check (then a download), a shard order written to a file (PR #377, #1705)
_GLOB_PRESENCE = _PRE_CLEAN.format(before="""    if not glob.glob(train_files) or not glob.glob(val_files):
        fetch_data()
""") + """
def fetch_data():
    print("downloading")
"""
_GLOB_ORDER = _PRE_CLEAN.format(before="""    names = sorted(glob.glob(train_files))
    if names:
        ordered = spread(names, 7)
        with open("/tmp/order.txt", "w") as f:
            for nm in ordered:
                f.write(str(nm) + "\\n")
""") + """
def spread(items, k):
    out = []
    for i in range(len(items)):
        out.append(items[(i * k) % len(items)])
    return out
"""
# the same listing whose names are then opened: a prefill from the training shards
_GLOB_PREFILL = _PRE_CLEAN.format(before="""    names = sorted(glob.glob(train_files))
    if names:
        ordered = spread(names, 7)
        table = [read_all(nm) for nm in ordered]
""") + """
def spread(items, k):
    out = []
    for i in range(len(items)):
        out.append(items[(i * k) % len(items)])
    return out

def read_all(path):
    return load_data_shard(path)
"""
_EVAL_READS_TRAIN = _TRAIN.format(after="""    return eval_with_prior(model, val_tokens)

def eval_with_prior(model, tokens):
    prior = [load_data_shard(f) for f in sorted(glob.glob(train_files))]
    return model(tokens).mean() + len(prior)
""")


@register
class DataNoTrainAtEval(Rule):
    """No training data may be read during evaluation, i.e. after the 600 s training window, unless
    those bytes are paid for inside the artifact. That covers eval functions that read train shards,
    n-gram/oracle tables prefilled from train shards for use at eval, and GPTQ/Hessian calibration
    on training batches after the window. Calibration inside the budget (a ``GPTQ_RESERVE_SECONDS``
    reserve) and autoregressive self-generated calibration are legal; TIME-TRAIN-600 checks the
    logged seconds.

    Ruling: README FAQ ("No external downloads, training dataset access, or network calls are allowed
    during evaluation"); merged #1019 README (GPTQ on training data "ruled illegal after the 600s
    window"); Issue #677.
    """

    id = "DATA-NO-TRAIN-AT-EVAL"
    code = "PG201"
    title = "training data is read after the training window"
    family = "data"
    ruling = "https://github.com/openai/parameter-golf/issues/677"
    fix = "Collect calibration statistics inside the 600 s budget (GPTQ_RESERVE_SECONDS) or from self-generated data; never read train shards at eval."
    default_severity = Severity.ERROR

    VALID = [Valid(_CLEAN), Valid(_GPTQ_AFTER.replace("import glob", "GPTQ_RESERVE_SECONDS = 12.0\nimport glob"),
                                  note="GPTQ after the loop with a reserve: inside the budget"),
             Valid(_GLOB_PRESENCE, note="glob of the training shards only to test they are present: names, no data"),
             Valid(_GLOB_ORDER, note="glob of the training shards reordered and written out as names: no data read")]
    INVALID = [Invalid(_EVAL_READS_TRAIN, note="eval function reads train shards"),
               Invalid(_GPTQ_AFTER, note="GPTQ on train batches after the window, no reserve (#634 as first submitted)"),
               Invalid(_GLOB_PREFILL, expect=Severity.WARNING, note="the same listing whose names a helper then reads: a prefill")]

    def check(self, ctx):
        df = data_facts(ctx)
        for a in df.of("train-read"):
            if a.reach == UNREACHABLE:
                continue
            note = df.notes.get(a.file)
            if a.after_training:
                calib = CALIB_NAME.search(a.func) or CALIB_NAME.search(a.text)
                if (calib or a.unscored) and df.has_reserve:  # calibration by name, or by value (feeds no score)
                    yield self.finding(a.file, a.line, f"calibration reads training data after the training loop ({a.func or 'module'}), "
                                       "with a GPTQ time reserve: legal inside the 600 s budget; TIME-TRAIN-600 checks the logged seconds",
                                       severity=Severity.INFO, evidence=[a.text], note=note)
                    continue
                if not calib and _before_export(ctx, df, a):
                    yield self.finding(a.file, a.line, f"training data is read after the training loop but before the artifact is "
                                       f"written ({a.func or 'module level'}): still the training phase, so its seconds count "
                                       "toward the 600 s training budget (TIME-TRAIN-600 checks the logged time)",
                                       severity=Severity.WARNING, evidence=[a.text], note=note, reachability=a.reach_why or None)
                    continue
                what = "GPTQ/Hessian calibration on training batches" if calib else "training data read"
                yield self.finding(a.file, a.line, f"{what} after the training loop ends (in {a.func or 'module level'}, reached from the code "
                                   f"after the loop in {df.loop.func}:{df.loop.end}), with no time reserve", evidence=[a.text],
                                   path=[f"{df.loop.file}:{df.loop.end} → {a.func}"], note=note, reachability=a.reach_why or None,
                                   severity=Severity.WARNING if a.reach else None)
            elif df.loop and a.file == df.loop.file and a.func == df.loop.func and a.line < df.loop.start \
                    and re.search(r"glob|fromfile|memmap|load_data_shard", a.text) and "Loader" not in a.text:
                yield self.finding(a.file, a.line, "training shards are read outside the training loader before the loop "
                                   "(a prefill?); a table built from them and used at evaluation must be paid for inside the artifact",
                                   severity=Severity.WARNING, evidence=[a.text], note=note)


_EXPORT = re.compile(r"(torch\.save|\.write_bytes|\.write\(|save_file|compress|serialize|quantize_state_dict)")


def _before_export(ctx, df, a) -> bool:
    """The read sits in the training function after its loop and before the first statement that
    writes the artifact: it shapes the artifact (training phase), it does not read data while evaluating it."""
    from rules.analysis import analyse

    loop = df.loop
    if not loop or a.file != loop.file or a.func != loop.func or a.line <= loop.end:
        return False
    ff = analyse(ctx).file(a.file)
    if ff is None:
        return False
    for ln in range(a.line + 1, len(ff.lines) + 1):
        text = ff.line_text(ln)
        if _EXPORT.search(text):
            return True
        if re.search(r"\b(eval_val|evaluate|val_tokens)\b", text):
            return False
    return False
