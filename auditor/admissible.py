"""The admissible score: what a record scores without its illegal eval-time stage.

Reviewers did this by hand: a record that fails only because of an eval-time stage (an n-gram
cache, test-time training, SLOT, a rescoring pass) usually prints a complete, legal evaluation
before that stage starts — PR #864 prints ``final_int6_zstd_roundtrip_exact … val_bpb:1.12791767``
and then runs its n-gram cache to claim 0.2841. This module finds, in each seed's log, the last
scoring evaluation printed after training and before the first line of the flagged stage.

It never computes a score: every per-seed value is a line of a log, quoted with its line number;
the folder's value is their mean. When no such line exists it says why instead of guessing.

The stage is located by the failing rules' families and the log reader's markers (``RunLog.markers``)
and evaluation labels, not by the line a rule points at: the eval-integrity rules anchor their
findings in the code, and those anchors move as the rules improve.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditor.evidence.logs import is_scoring_label
from auditor.model import VERDICT_FAIL, EvalLine, LogFile, RecordResult, RunLog, Severity

# rule -> the eval-time stage it condemns (marker kinds of the log reader, label words of its score lines)
_NGRAM = ("n-gram cache", ("ngram", "ngram_pass2", "ngram_two_pass", "ppm_mix", "prefill", "etlb"),
          ("ngram", "n-gram", "ppm", "mix", "cache", "etlb", "backoff", "prefill"))
_PASS = ("rescoring pass", ("ngram_pass2", "ngram_two_pass", "ngram", "ppm_mix"), ("pass2", "rescor", "two_pass", "ngram"))
_TTT = ("test-time training", ("ttt",), ("ttt", "ttp"))
_PREQUANT = ("pre-quantization TTT", ("prequant_ttt",), ("prequant_ttt", "pre_quant_ttt"))
_SLOT = ("SLOT", ("slot",), ("slot",))
_ANY = ("eval-time adaptation", ("ngram", "ngram_pass2", "ngram_two_pass", "ppm_mix", "prefill", "etlb", "ttt", "slot"),
        ("ngram", "n-gram", "ppm", "ttt", "slot", "etlb", "cache", "mix"))
_STAGE_ORDER = [_PREQUANT[0], _TTT[0], _SLOT[0], _NGRAM[0], _PASS[0], _ANY[0]]
STAGE_RULES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "NGRAM-TARGET-IN-KEY": _NGRAM,
    "NGRAM-HASHED-CACHE": _NGRAM,
    "EVAL-NORMALIZED-DIST": _NGRAM,
    "EVAL-SINGLE-PASS": _PASS,
    "EVAL-SCORE-BEFORE-UPDATE": _ANY,
    "EVAL-CAUSAL": _ANY,
    "TTT-SCORE-FIRST": _TTT,
    "TTT-MULTI-EPOCH": _TTT,
    "TTT-PREQUANT": _PREQUANT,
    "SLOT-SCORED-REGION": _SLOT,
}
# Errors that condemn training itself or the artifact: no log line stands for a legal run.
TRAINING_RULES = {"DATA-NO-VAL-IN-TRAIN"}
# Errors that follow from the stage (its eval time) or concern the claim, not the logged scores.
CARRIED_RULES = {"TIME-EVAL-600", "REPORT-CONSISTENCY", "STATS-SIGNIFICANCE"}

STATUS_MEASURED = "measured"  # nothing eval-time is flagged: the measured finals stand
STATUS_DERIVED = "derived"  # the score printed before the flagged stage
STATUS_NONE = "not-derivable"


@dataclass
class AdmissibleSeed:
    seed: int | None
    log: str
    val_bpb: float | None = None
    val_loss: float | None = None
    label: str | None = None
    line: int | None = None
    text: str | None = None
    stage_line: int | None = None  # where the excluded stage starts in this log
    stage_text: str | None = None
    reason: str | None = None  # why this seed has no value

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "log": self.log, "val_bpb": self.val_bpb, "val_loss": self.val_loss,
                "label": self.label, "line": self.line, "text": self.text, "stage_line": self.stage_line,
                "stage_text": self.stage_text, "reason": self.reason}


@dataclass
class Admissible:
    status: str
    val_bpb: float | None = None
    seeds: list[AdmissibleSeed] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)  # stage names, e.g. "n-gram cache"
    rules: list[str] = field(default_factory=list)  # the failing rules the excluded stages answer
    evidence: list[str] = field(default_factory=list)  # "log:line: text" per seed
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "val_bpb": self.val_bpb, "seeds": [s.to_json() for s in self.seeds],
                "excludes": list(self.excludes), "rules": list(self.rules), "evidence": list(self.evidence),
                "reason": self.reason}

    def summary(self) -> str:
        """One line for the text and Markdown tables."""
        if self.val_bpb is None:
            return f"not derivable: {self.reason}"
        n = len(self.seeds)
        if self.status == STATUS_MEASURED:
            return f"{self.val_bpb:.4f} (the measured score; no eval-time stage is flagged)"
        return f"{self.val_bpb:.4f} ({n} seed{'s' if n != 1 else ''}, before the {', '.join(self.excludes)})"


def _live_errors(rec: RecordResult) -> list[str]:
    return sorted({f.rule for f in rec.findings if not f.waived and f.severity == Severity.ERROR})


def _find_log(logs: list[LogFile], rel: str) -> LogFile | None:
    return next((lf for lf in logs if lf.path == rel), None)


def _train_end(run: RunLog) -> int:
    """The last line of training: the stop line, else the line before the first post-training eval."""
    if run.stop is not None:
        return run.stop.line
    after = [e.line for e in run.evals if e.after_stop]
    return min(after) - 1 if after else run.first_line


def _stage_start(run: RunLog, kinds: set[str], words: tuple[str, ...], after: int) -> tuple[int, str] | None:
    """The first line after training that belongs to a flagged stage: a marker of its kind or an
    evaluation whose label names it."""
    hits: list[tuple[int, str]] = []
    for kind in kinds:
        hits.extend((ln, text) for ln, text in run.markers.get(kind, []) if ln > after)
    for e in run.evals:
        low = e.label.lower()
        if e.line > after and any(w in low for w in words):
            hits.append((e.line, e.text))
    return min(hits) if hits else None


def _seed_value(lf: LogFile, seed: int | None, kinds: set[str], words: tuple[str, ...]) -> AdmissibleSeed:
    out = AdmissibleSeed(seed=seed, log=lf.path)
    run = lf.last_run
    if run is None or not run.evals:
        out.reason = "the log prints no evaluation"
        return out
    end = _train_end(run)
    start = _stage_start(run, kinds, words, end)
    if start is None:
        inside = any(ln <= end and ln >= run.first_line for k in kinds for ln, _ in run.markers.get(k, []))
        out.reason = ("the illegal stage runs inside training" if inside and _progress_inside(run, kinds, end) else
                      "the log shows no line of the flagged stage (it may not have run), so no score can be tied to before it")
        return out
    out.stage_line, out.stage_text = start
    cands = [e for e in run.evals if e.after_stop and e.val_bpb is not None and e.line < start[0]
             and is_scoring_label(e.label) and not any(w in e.label.lower() for w in words)]
    if not cands:
        out.reason = "no evaluation is printed before the stage"
        return out
    chosen = _choose(cands)
    out.val_bpb, out.val_loss, out.label = chosen.val_bpb, chosen.val_loss, chosen.label
    out.line, out.text = chosen.line, chosen.text
    return out


def _progress_inside(run: RunLog, kinds: set[str], end: int) -> bool:
    """A stage line inside training that is not a hyperparameter echo (``ttt_lr: 0.01``)."""
    for k in kinds:
        for ln, text in run.markers.get(k, []):
            if run.first_line <= ln <= end and ("step" in text.lower() or "loss" in text.lower()):
                return True
    return False


def _choose(cands: list[EvalLine]) -> EvalLine:
    """The last scoring line before the stage, in its ``_exact`` twin when printed; of repeated
    identical values (a compatibility alias printing the same numbers) the first printed."""
    last = cands[-1]
    if not last.label.endswith("_exact"):
        twin = next((e for e in reversed(cands) if e.label == last.label + "_exact"
                     and abs((e.val_bpb or 0) - (last.val_bpb or 0)) < 6e-4), None)
        last = twin or last
    same = [e for e in cands if e.val_bpb == last.val_bpb and e.val_loss == last.val_loss
            and e.label.endswith("_exact") == last.label.endswith("_exact")]
    return same[0] if same else last


def _evidence(s: AdmissibleSeed) -> str:
    return f"{s.log}:{s.line}: {s.text}"


def derive(rec: RecordResult, logs: list[LogFile]) -> Admissible:
    """The admissible score of an audited folder (its findings, verdict and measured seeds are set)."""
    errors = _live_errors(rec)
    seeds = [s for s in rec.measured.seeds if s.log]
    if rec.verdict != VERDICT_FAIL or not errors:
        adm = Admissible(status=STATUS_MEASURED, val_bpb=rec.measured.val_bpb)
        for s in seeds:
            lf = _find_log(logs, s.log)
            fin = lf.last_run.final if lf and lf.last_run else None
            a = AdmissibleSeed(seed=s.seed, log=s.log, val_bpb=s.val_bpb, val_loss=s.val_loss, label=s.label,
                               line=fin.line if fin else None, text=fin.text if fin else None)
            adm.seeds.append(a)
            if fin:
                adm.evidence.append(_evidence(a))
        if adm.val_bpb is None:
            adm.status, adm.reason = STATUS_NONE, "no seed log prints a final score"
        return adm
    adm = Admissible(status=STATUS_NONE)
    training = [r for r in errors if r in TRAINING_RULES]
    stage = [r for r in errors if r in STAGE_RULES]
    other = [r for r in errors if r not in STAGE_RULES and r not in TRAINING_RULES and r not in CARRIED_RULES]
    adm.rules = stage
    if training:
        adm.reason = f"the illegal stage runs inside training ({', '.join(training)})"
        return adm
    if other:
        adm.reason = f"fails outside any eval-time stage ({', '.join(other)}): leaving a stage out would not make it pass"
        return adm
    if not stage:
        adm.reason = "the errors concern the claim, not an eval-time stage"
        return adm
    kinds: set[str] = set()
    words: list[str] = []
    for r in stage:
        name, k, w = STAGE_RULES[r]
        if name not in adm.excludes:
            adm.excludes.append(name)
        kinds.update(k)
        words.extend(x for x in w if x not in words)
    adm.excludes.sort(key=_STAGE_ORDER.index)  # in the order the stages run, whatever the rule ids
    if not seeds:
        adm.reason = "no seed log prints a final score"
        return adm
    for s in seeds:
        lf = _find_log(logs, s.log)
        if lf is None:
            adm.seeds.append(AdmissibleSeed(seed=s.seed, log=s.log, reason="the log was not read"))
            continue
        a = _seed_value(lf, s.seed, kinds, tuple(words))
        adm.seeds.append(a)
        if a.val_bpb is not None:
            adm.evidence.append(_evidence(a))
    missing = [a for a in adm.seeds if a.val_bpb is None]
    if missing:
        reasons = sorted({a.reason or "" for a in missing})
        if len(reasons) == 1 and len(missing) == len(adm.seeds):
            adm.reason = reasons[0]
        else:
            adm.reason = "; ".join(f"{a.log}: {a.reason}" for a in missing)
        return adm
    adm.status = STATUS_DERIVED
    adm.val_bpb = sum(a.val_bpb for a in adm.seeds if a.val_bpb is not None) / len(adm.seeds)
    return adm


def derive_safely(rec: RecordResult, logs: list[LogFile]) -> Admissible:
    """``derive`` for the pipeline: a bug here must not cost the folder its audit."""
    try:
        return derive(rec, logs)
    except Exception as exc:  # reported on the record, never raised
        return Admissible(status=STATUS_NONE, reason=f"could not be derived ({type(exc).__name__}: {exc})")
