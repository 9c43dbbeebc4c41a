"""TOKENIZER-BPB-ACCOUNTING (rules.md §1.5)."""
from __future__ import annotations

import ast
import re

from auditor.model import Severity
from auditor.policy import UNREACHABLE
from rules.analysis import analyse
from rules.analysis.index import call_name
from rules.base import Invalid, Rule, Valid, register
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)

CANONICAL = {"fineweb_1024_bpe.model", "fineweb_4096_bpe.model", "fineweb_8192_bpe.model", "fineweb_1024_bpe.vocab",
             "fineweb_4096_bpe.vocab", "fineweb_8192_bpe.vocab"}
CASEOPS = re.compile(r"lossless_caps_caseops")
SIDECAR = re.compile(r"fineweb_val_bytes|byte_sidecar|val_bytes_files")
META = re.compile(r"\.meta\.(npz|json|npy)$|meta\.npz$")

_LUT = '''
import numpy as np
import sentencepiece as spm

def build_luts(sp):
    base = np.zeros(sp.vocab_size(), dtype=np.int16)
    for t in range(sp.vocab_size()):
        if sp.is_control(t) or sp.is_unknown(t) or sp.is_unused(t):
            continue
        {byte_branch}piece = sp.id_to_piece(t)
        base[t] = len(piece.removeprefix("\\u2581").encode("utf-8"))
    return base


print(build_luts(spm.SentencePieceProcessor(model_file="tok.model")))
'''
_GOOD = _LUT.format(byte_branch="if sp.is_byte(t):\n            base[t] = 1\n            continue\n        ")
_BAD = _LUT.format(byte_branch="")


@register
class TokenizerBpbAccounting(Rule):
    """val_bpb divides the nats by the UTF-8 bytes of the original validation text, so a submission
    that changes the tokenizer or the byte-count path must prove the denominator. The baseline LUT
    counts a byte-fallback piece as 1 byte (``sp.is_byte → 1``); a LUT built from
    ``len(piece.encode())`` without that branch counts ``<0xE2>`` as 6 bytes and inflates the
    denominator — an error (the reverted Scylla record counted byte-fallback pieces as 3 bytes).
    Custom tokenizers, byte metadata files (``*.meta.npz``) and other changed byte paths are warnings
    that ask for the proof; lossless CaseOps with a per-token byte sidecar is accepted by merge.
    A shipped ``bpb_proof.json`` (the tokenizer's sha256 and a val sample) is that proof in a form
    pgolf re-checks itself: decode(encode(doc)) == doc byte for byte and the baseline byte tables
    summing to the sample's UTF-8 bytes settle the tokenizer (info); a proof whose numbers do not
    hold is an error, one that cannot be checked a warning.

    Ruling: README ("Submissions that edit the tokenizer will be examined much more carefully");
    #1806 (Scylla record #1184 reverted as invalid); #1729/#1736 (byte sidecar merged).
    """

    id = "TOKENIZER-BPB-ACCOUNTING"
    code = "PG801"
    title = "the BPB byte count is not proven"
    family = "tokenizer"
    ruling = "https://github.com/openai/parameter-golf/pull/1806"
    fix = ("Count byte-fallback pieces as 1 byte and show decode(ids) reproduces the val text byte for byte: ship bpb_proof.json "
           "(docs/reports.md) or use a raw-byte sidecar.")
    default_severity = Severity.ERROR

    VALID = [Valid(_GOOD)]
    INVALID = [
        Invalid(_BAD, note="byte-fallback pieces counted by len(piece.encode())"),
        Invalid({"train_gpt.py": _GOOD, "tok.meta.npz": "binary stand-in", "my_tokenizer.model": "x"}, expect=Severity.WARNING,
                note="custom tokenizer and byte metadata shipped"),
    ]

    def check(self, ctx):
        facts = analyse(ctx)
        ev = ctx.evidence
        alltext = "\n".join(ff.text for ff in facts.files)
        has_is_byte = "is_byte" in alltext
        for ff in facts.files:
            if ff.tree is None or "encode" not in ff.text:
                continue
            for node in ast_walk(ff.tree):
                if not (isinstance(node, ast.Call) and call_name(node.func) == "len" and node.args):
                    continue
                inner = node.args[0]
                if not (isinstance(inner, ast.Call) and call_name(inner.func).endswith(".encode")):
                    continue
                src = ast.dump(inner)
                fn = ff.enclosing_function(node)
                body = ast.dump(fn.node) if fn else ""
                if "piece" not in src.lower() and "id_to_piece" not in body:
                    continue
                if has_is_byte and ("is_byte" in body or not fn):
                    continue
                r = facts.reach(node, ff)
                if r.state == UNREACHABLE:
                    continue
                yield self.finding(ff.path, node.lineno, "the byte LUT takes len(piece.encode()) with no sp.is_byte branch: byte-fallback "
                                   "pieces such as <0xE2> are counted as several bytes instead of 1, inflating the denominator",
                                   evidence=[ff.line_text(node.lineno)], note=facts.notes.get(ff.path), reachability=r.why or None)
        shipped = [f for f in ev.folder.files if f.lower().endswith((".model", ".vocab")) or f.lower().startswith("tokenizers/")]
        meta = [f for f in ev.folder.files if META.search(f.lower())]
        # a tokenizer named only in a log lives outside the folder: the finding points at that log
        logged: dict[str, str] = {}
        for lf in ev.logs:
            for r in lf.runs:
                tp = r.tokenizer_path or r.hyperparameters.get("tokenizer_path", "")
                if tp:
                    logged.setdefault(tp, lf.path)
        custom = [f for f in shipped if f.rsplit("/", 1)[-1] not in CANONICAL and not f.lower().endswith((".md", ".json", ".py"))]
        custom += [p for p in logged if p.rsplit("/", 1)[-1] not in CANONICAL and p not in custom]
        anchor = {c: logged.get(c, c) for c in custom}
        sidecar = bool(SIDECAR.search(alltext))
        caseops = [c for c in custom if CASEOPS.search(c)]
        for f in meta:
            yield self.finding(f, None, f"{f} ships byte metadata; the denominator then depends on it: show that it equals the UTF-8 "
                               "bytes of the val text (byte-fallback pieces = 1 byte)", severity=Severity.WARNING)
        if ev.bpb_proof is not None:
            settled, findings = self._proof_findings(ev.bpb_proof, custom)
            yield from findings
            custom = [c for c in custom if c not in settled]
        if custom and caseops and sidecar and len(caseops) == len(custom):
            yield self.finding(anchor[caseops[0]], None, "lossless CaseOps tokenizer with a per-token byte sidecar (accepted by merge, #1729/#1736)",
                               severity=Severity.INFO, evidence=caseops)
        elif custom:
            yield self.finding(anchor[custom[0]], None, f"a custom tokenizer is used ({custom[0]}): the README requires proof that the byte count equals the "
                               "UTF-8 bytes of the original val text" + (" (a byte sidecar is read)" if sidecar else ""),
                               severity=Severity.WARNING, evidence=sorted(set(custom))[:6])

    def _proof_findings(self, proof, custom: list[str]):
        """The shipped proof (bpb_proof.json, re-checked by the evidence layer): a verified one settles
        the custom tokenizers it names; a wrong one is an error; one that cannot be checked is a
        warning. Returns (the settled tokenizers, the findings)."""
        if proof.verified:
            name = proof.tokenizer.rsplit("/", 1)[-1]
            settled = [c for c in custom if c.rsplit("/", 1)[-1] == name]
            if not settled:
                return [], []
            return settled, [self.finding(proof.file, None, f"byte accounting of the custom tokenizer {name} proven by {proof.file} "
                                          "(re-checked by pgolf: sha256, decode(encode(val sample)) byte for byte, byte-table sum)",
                                          severity=Severity.INFO, evidence=proof.checks)]
        if proof.wrong:
            return [], [self.finding(proof.file, None, "the byte-accounting proof does not hold: " + "; ".join(proof.problems),
                                     severity=Severity.ERROR, evidence=proof.checks + proof.problems)]
        return [], [self.finding(proof.file, None, "the byte-accounting proof could not be checked: " + "; ".join(proof.problems),
                                 severity=Severity.WARNING, evidence=proof.problems)]
