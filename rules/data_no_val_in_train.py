"""DATA-NO-VAL-IN-TRAIN (rules.md §1.2)."""
from __future__ import annotations

import ast
import re

from auditor.model import Severity
from auditor.policy import UNREACHABLE
from rules.analysis import analyse
from rules.base import Invalid, Rule, Valid, register
from rules.data_access import data_facts
from rules.data_no_train_at_eval import _CLEAN, _TRAIN
from rules.time_logs import three_seeds
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)

# ``ln -s …fineweb_val_000000.bin …fineweb_train_000080.bin`` / cp / mv / rsync of a val shard to a train name
_LAYOUT = re.compile(r"\b(ln|cp|mv|rsync|install)\b[^|;&#\n]*?\S*val\S*\.bin\S*\s+\S*train\S*")
PREFIX = re.compile(r"paid_prefix|prefix_tokens|val_prefix|prefix_blob", re.I)
CANONICAL_SHARDS_MAX = 600  # sp1024/CaseOps exports have 80, the SP8192 log 128; #2130's leak showed 1,499
_VAL_DOCS_DEFAULT = re.compile(r"""["']--val[-_]docs["'][^)]*default\s*=\s*([\d_]+)""")
_REBUILT = re.compile(r"\b(re-?built|re-?generat\w*|rebuild|we (?:built|generated|tokenized) the (?:train|data))", re.I)

_PAID = '''
import torch
paid_prefix_tokens = torch.load("prefix.pt")

def eval_val(model, x, y):
    nll = model(x, y)
    match = paid_prefix_tokens[: y.numel()] == y
    return (nll * (~match)).sum()


print(eval_val(torch.nn.Identity(), torch.zeros(4), torch.zeros(4)))
'''
_VAL_LOADER = _TRAIN.format(after="    return eval_val(model, val_tokens)\n").replace(
    "def main(model, opt, loader, val_tokens, steps):\n",
    "def main(model, opt, loader, val_tokens, steps):\n    loader = DistributedTokenLoader(val_files, 0, 8)\n")
_PREP = '''
import argparse
ap = argparse.ArgumentParser()
ap.add_argument("--val-docs", type=int, default=10_000, help="Validation docs count")
'''


@register
class DataNoValInTrain(Rule):
    """Validation tokens may not influence anything before they are scored: no training on val, no
    val tokens stored in the artifact ("paid prefix"), no GPTQ/Hessian calibration on val, no
    training shards that overlap the validation documents.

    Checked statically (a training loader built over ``fineweb_val_*``, calibration called with
    ``val_tokens``, a stored prefix compared with the targets), from the logs (``train_shards:``
    far above the canonical export — 1,499 was the #2130 leak fingerprint) and from shipped data-prep
    scripts whose ``--val-docs`` default is below the canonical 50,000 when the folder says the
    shards were rebuilt with them (#2018, #2130).

    Ruling: README 2026-03-20 ("You CANNOT access validation data during training, e.g. by
    compressing it into your 16mb with 'paid prefix'"); Issue #2127 and cocohearts' #2146 audit.
    """

    id = "DATA-NO-VAL-IN-TRAIN"
    code = "PG202"
    title = "validation data reaches training or the artifact"
    family = "data"
    ruling = "https://github.com/openai/parameter-golf/issues/2127"
    fix = "Train and calibrate only on fineweb_train_* built with the canonical 50,000-document validation split; ship no val-derived data."
    default_severity = Severity.ERROR

    VALID = [Valid(_CLEAN), Valid({"train_gpt.py": _CLEAN, "prepare_data.py": _PREP, **three_seeds()},
                                  note="prep script shipped, canonical shards used: info only")]
    INVALID = [
        Invalid(_PAID, note="paid prefix compared with the targets"),
        Invalid(_VAL_LOADER, note="a training loader over val files"),
        Invalid({"train_gpt.py": _CLEAN, "prepare_data.py": _PREP, "README.md": "We rebuilt the train shards with prepare_data.py (its default --val-docs=10000).\n",
                 **three_seeds()}, note="shards rebuilt with 10,000 val docs (#2018)"),
        Invalid({"train_gpt.py": _CLEAN, **{k: v.replace("train_shards: 80", "train_shards: 1499") for k, v in three_seeds().items()}},
                note="the #2130 fingerprint"),
    ]

    def check(self, ctx):
        df = data_facts(ctx)
        for a in df.accesses:
            if a.kind not in ("val-to-train", "val-calibration") or a.reach == UNREACHABLE:
                continue
            yield self.finding(a.file, a.line, a.detail[0].upper() + a.detail[1:] + f" in {a.func or 'module level'}", evidence=[a.text],
                               note=df.notes.get(a.file), severity=Severity.WARNING if a.reach else None, reachability=a.reach_why or None)
        yield from self._paid_prefix(ctx)
        yield from self._shards(ctx)
        yield from self._layout(ctx)

    def _layout(self, ctx):
        """A shell script or README command that links, copies or moves a validation shard to a
        training-shard name: the training loader then reads validation tokens."""
        ev = ctx.evidence
        docs = [(path, text) for path, text in getattr(ev.code, "scripts", ())]
        if ev.readme and ev.readme_file:
            docs.append((ev.readme_file, ev.readme))
        for path, text in docs:
            for i, line in enumerate(text.split("\n"), 1):
                s = line.strip()
                if s.startswith("#") or len(s) > 2000:
                    continue
                m = _LAYOUT.search(s)
                if m:
                    yield self.finding(path, i, f"`{s[:160]}` lays a validation shard out under a training-shard name: "
                                       "the training loader reads validation tokens", evidence=[f"{path}:{i}: {s[:300]}"],
                                       reachability="a command the record's run instructions execute")
                    break

    def _paid_prefix(self, ctx):
        facts = analyse(ctx)
        for ff in facts.files:
            if ff.tree is None or not PREFIX.search(ff.text):
                continue
            tainted = {n.id for node in ast_walk(ff.tree) if isinstance(node, ast.Assign) and _mentions_prefix(node.value, set())
                       for t in node.targets for n in ast_walk(t) if isinstance(n, ast.Name)}
            for node in ast_walk(ff.tree):
                if isinstance(node, ast.Compare) and any(isinstance(o, (ast.Eq, ast.NotEq)) for o in node.ops) \
                        and any(_mentions_prefix(x, tainted) for x in [node.left, *node.comparators]):
                    r = facts.reach(node, ff)
                    if r.state == UNREACHABLE:
                        continue
                    yield self.finding(ff.path, node.lineno, "a stored token prefix is compared with the targets being scored "
                                       "(\"paid prefix\": validation tokens carried in the artifact)", evidence=[ff.line_text(node.lineno)],
                                       note=facts.notes.get(ff.path), reachability=r.why or None,
                                       severity=Severity.ERROR)
                    break

    def _shards(self, ctx):
        ev = ctx.evidence
        for lf in ev.logs:
            run = lf.last_run
            if run and run.train_shards is not None and run.train_shards > CANONICAL_SHARDS_MAX:
                yield self.finding(lf.path, run.first_line, f"train_shards: {run.train_shards} — far more than the canonical export "
                                   "(80 for sp1024/CaseOps, 128 for SP8192); 1,499 was the fingerprint of shards regenerated with "
                                   "validation documents inside them (#2130)", evidence=[f"train_shards: {run.train_shards}"])
                break
        docs = " ".join(t for t in [ev.readme or ""] + _markdown(ctx))
        for cf in ev.folder.files:
            if not cf.endswith(".py"):
                continue
            text = ev.texts.get(cf, "")  # decoded by the reader (under 2,000,000 bytes)
            m = _VAL_DOCS_DEFAULT.search(text)
            if not m:
                continue
            n = int(m.group(1).replace("_", ""))
            if n >= 50_000:
                continue
            line = text[: m.start()].count("\n") + 1
            rebuilt = _REBUILT.search(docs)
            says_default = re.search(r"val[-_]docs\W{0,6}(?:=|default is|default)?\W{0,4}" + f"({n}|{n:_}|{n:,})", docs)
            if rebuilt and not says_default:
                yield self.finding(cf, line, f"{cf} defaults to --val-docs {n:,} (canonical 50,000) and the folder says shards were "
                                   "rebuilt; confirm they were built with --val-docs 50000, or validation documents are in the "
                                   "training shards (#2018, #2130)", severity=Severity.WARNING,
                                   evidence=[text.splitlines()[line - 1].strip(), rebuilt.group(0)])
            elif rebuilt:
                yield self.finding(cf, line, f"{cf} defaults to --val-docs {n:,} (canonical 50,000), and the folder says the shards were "
                                   f"rebuilt: documents {n:,}–49,999 of the validation set are then in the training shards (#2018, #2130)",
                                   evidence=[text.splitlines()[line - 1].strip(), rebuilt.group(0)])
            else:
                yield self.finding(cf, line, f"{cf} defaults to --val-docs {n:,} (canonical 50,000); shards built with it would put "
                                   "validation documents into training. The logs show no sign it was used", severity=Severity.INFO,
                                   evidence=[text.splitlines()[line - 1].strip()])


def _mentions_prefix(node: ast.AST, tainted: set[str]) -> bool:
    for n in ast_walk(node):
        if isinstance(n, ast.Name) and (PREFIX.search(n.id) or n.id in tainted):
            return True
        if isinstance(n, ast.Attribute) and PREFIX.search(n.attr):
            return True
    return False


def _markdown(ctx) -> list[str]:
    ev = ctx.evidence
    return [ev.texts[f] for f in ev.folder.files if f.lower().endswith(".md") and f.count("/") <= 1 and f in ev.texts]
