"""What every renderer shares: verdict order, number formats, locations, rule metadata, sparklines.

Renderers differ in syntax only; what a report says (which findings come first, how a number is
printed, where a finding points) is decided here once, so the five formats never disagree.
"""
from __future__ import annotations

import math
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from auditor.model import VERDICT_FAIL, VERDICT_PASS, VERDICT_REVIEW, Finding, RecordResult, Report, RuleInfo, Severity  # noqa: F401  (RuleInfo: renderers name it C.RuleInfo)

CAP_BYTES = 16_000_000
# The two rulebooks of STATS-SIGNIFICANCE (rules.md §1.6): the README's and the one used in practice.
README_P, README_NATS = 0.01, 0.005
PRACTICE_P = 0.25

VERDICT_RANK = {VERDICT_FAIL: 0, VERDICT_REVIEW: 1, VERDICT_PASS: 2}
VERDICT_LABEL = {VERDICT_FAIL: "fail", VERDICT_REVIEW: "needs review", VERDICT_PASS: "pass"}


# --------------------------------------------------------------------------- verdicts and order

def overall_verdict(report: Report) -> str | None:
    """The worst verdict over all records; None when nothing was readable."""
    if not report.records:
        return None
    return min((r.verdict for r in report.records), key=lambda v: VERDICT_RANK.get(v, 1))


def records_by_verdict(report: Report) -> list[RecordResult]:
    """Failing folders first, then those that need review, then passes; path order within each."""
    return sorted(report.records, key=lambda r: (VERDICT_RANK.get(r.verdict, 1), r.path))


def ordered_findings(rec: RecordResult) -> list[Finding]:
    """Live findings by severity, then waived ones: a waived error must not hide a live warning."""
    return sorted(rec.findings, key=lambda f: (f.waived is not None, -f.severity.rank, f.rule, f.file, f.line or 0))


def counts(rec: RecordResult) -> dict[str, int]:
    out = {"error": 0, "warning": 0, "info": 0, "waived": 0}
    for f in rec.findings:
        if f.waived is not None:
            out["waived"] += 1
        else:
            out[f.severity.value] += 1
    return out


def verdict_counts(report: Report) -> dict[str, int]:
    out = {VERDICT_FAIL: 0, VERDICT_REVIEW: 0, VERDICT_PASS: 0}
    for r in report.records:
        out[r.verdict] = out.get(r.verdict, 0) + 1
    return out


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def counts_phrase(c: dict[str, int], unreadable: int = 0) -> str:
    parts = [plural(c[k], k) for k in ("error", "warning", "info") if c.get(k)]
    if c.get("waived"):
        parts.append(f"{c['waived']} waived")
    if unreadable:
        parts.append(f"{unreadable} unreadable")
    return ", ".join(parts) or "no findings"


def record_phrase(rec: RecordResult) -> str:
    return counts_phrase(counts(rec), len(rec.errors))


# --------------------------------------------------------------------------- numbers

def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def fmt_bpb(x) -> str:
    return f"{x:.4f}" if finite(x) else "—"


def fmt_bytes(x) -> str:
    return f"{int(x):,}" if finite(x) else "—"


def fmt_ms(ms) -> str:
    return f"{ms / 1000:.1f} s" if finite(ms) else "—"


def fmt_p(p) -> str:
    if not finite(p):
        return "—"
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}"


def fmt_seed(s) -> str:
    return "?" if s is None else str(s)


def over_bytes(x) -> bool:
    return finite(x) and x > CAP_BYTES


def _max(values):
    vals = [v for v in values if finite(v)]
    return max(vals) if vals else None


@dataclass
class Row:
    """One metric of a folder's summary table: what the claim says, what the evidence shows."""

    name: str
    claimed: str
    measured: str
    per_seed: list[str]
    bad: bool = False  # over a cap or disagreeing with the claim


def _flagged(rec: RecordResult, rule: str, mentions: str = "") -> bool:
    return any(f.rule == rule and f.waived is None and f.severity.rank >= Severity.WARNING.rank and mentions in f.message
               for f in rec.findings)


def summary_rows(rec: RecordResult) -> list[Row]:
    """The rows every format's per-folder table shows, in one order.

    A row is marked only where a rule raised a live finding about it (or bytes exceed the decimal
    cap, a fact with no tolerance): the table must not raise alarms the rules have ruled out, e.g.
    a wallclock stop one step past 600 s or a mean that differs in the last printed digit."""
    c, m = rec.claims, rec.measured
    seeds = m.seeds
    rows = [Row("val_bpb", fmt_bpb(c.val_bpb), fmt_bpb(m.val_bpb), [fmt_bpb(s.val_bpb) for s in seeds],
                bad=_flagged(rec, "REPORT-CONSISTENCY", "val_bpb"))]
    if finite(c.val_loss) or finite(m.val_loss) or any(finite(s.val_loss) for s in seeds):
        rows.append(Row("val_loss", fmt_bpb(c.val_loss), fmt_bpb(m.val_loss), [fmt_bpb(s.val_loss) for s in seeds]))
    total = m.bytes_total if finite(m.bytes_total) else _max(s.bytes_total for s in seeds)
    rows.append(Row("bytes total", fmt_bytes(c.bytes_total), fmt_bytes(total) + (f" ({m.bytes_source})" if m.bytes_source and finite(total) else ""),
                    [fmt_bytes(s.bytes_total) for s in seeds],
                    bad=over_bytes(total) or any(over_bytes(s.bytes_total) for s in seeds) or _flagged(rec, "ARTIFACT-16MB")
                    or _flagged(rec, "REPORT-CONSISTENCY", "bytes_total")))
    code = m.bytes_code if finite(m.bytes_code) else _max(s.bytes_code for s in seeds)
    rows.append(Row("bytes code", fmt_bytes(c.bytes_code), fmt_bytes(code), [fmt_bytes(s.bytes_code) for s in seeds]))
    if finite(m.bytes_model):
        rows.append(Row("bytes model", "—", fmt_bytes(m.bytes_model), ["" for _ in seeds]))
    train = _max(s.train_time_ms for s in seeds)
    rows.append(Row("train time", "—", ("max " + fmt_ms(train)) if train is not None else "—", [fmt_ms(s.train_time_ms) for s in seeds],
                    bad=_flagged(rec, "TIME-TRAIN-600")))
    ev = _max(s.eval_time_ms for s in seeds)
    rows.append(Row("eval time", "—", ("max " + fmt_ms(ev)) if ev is not None else "—", [fmt_ms(s.eval_time_ms) for s in seeds],
                    bad=_flagged(rec, "TIME-EVAL-600")))
    claimed_seeds = ", ".join(str(s) for s in c.seeds) if c.seeds else "—"
    measured_seeds = ", ".join(fmt_seed(s.seed) for s in seeds) if seeds else "—"
    rows.append(Row("seeds", claimed_seeds, f"{len(seeds)}: {measured_seeds}" if seeds else "—", [s.log for s in seeds]))
    adm = getattr(rec, "admissible", None)
    if adm is not None and getattr(adm, "status", None) == "derived":
        # the score a failing folder prints before its illegal eval-time stage (auditor.admissible)
        by_log = {a.log: a for a in adm.seeds}
        rows.append(Row("admissible val_bpb", "—", f"{fmt_bpb(adm.val_bpb)} (before the {', '.join(adm.excludes)})",
                        [fmt_bpb(by_log[s.log].val_bpb) if s.log in by_log else "" for s in seeds]))
    return rows


NOT_COMPUTED = "not computed (no previous record: --against)"
P_LABEL = f"p-values (README ≥{README_NATS} nats p<{README_P}, practice p<{PRACTICE_P})"


def stats_lines(rec: RecordResult) -> list[tuple[str, str, bool | None]]:
    """(label, value, passes) for the seed spread and the significance tests under both rulebooks.

    The p-values come from ``auditor.stats`` (one-sided Welch tests against ``--against``; the
    README test already includes its 0.005-nat margin). Without a previous record they are "not
    computed", said once, so a reviewer knows they were not silently passed."""
    st = rec.stats
    out: list[tuple[str, str, bool | None]] = []
    if st is not None and st.n_seeds >= 2:
        spread = f"n={st.n_seeds}, mean {fmt_bpb(st.mean_bpb)}"
        if finite(st.std_bpb):
            spread += f", std {st.std_bpb:.4f}"
        out.append(("seed spread", spread, None))
    if st is None or not (finite(st.p_readme) or finite(st.p_practice)):
        problem = (st.extra.get("against_problem") if st is not None else None) or ""
        why = f"not computed: {one_line(str(problem), 120)}" if problem else NOT_COMPUTED
        out.append((P_LABEL, why, None))
        return out
    against = f" vs {st.against.rstrip('/').rsplit('/', 1)[-1]}" if st.against else ""
    if finite(st.delta_nats):
        out.append(("Δ val_loss (nats)" + against, f"{st.delta_nats:+.4f}", None))
    delta_bpb = st.extra.get("delta_bpb")
    if finite(delta_bpb):
        out.append(("Δ val_bpb" + against, f"{delta_bpb:+.4f}", None))
    # Both rulebooks, always: one missing is "not computable" (e.g. no seed-to-seed spread), not absent.
    for label, p, alpha in ((f"p, README rule (≥{README_NATS} nats, p<{README_P})", st.p_readme, README_P),
                            (f"p, practice since 2026-04-28 (p<{PRACTICE_P})", st.p_practice, PRACTICE_P)):
        if finite(p):
            out.append((label, fmt_p(p), p < alpha))
        else:
            out.append((label, "not computable (fewer than 2 seeds or no spread)", None))
    return out


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values) -> str:
    """Unicode block sparkline; low values are low blocks. '' when fewer than two finite values."""
    vals = [v for v in values if finite(v)]
    if len(vals) < 2:
        return ""
    lo, hi = min(vals), max(vals)
    span = hi - lo
    out = []
    for v in values:
        if not finite(v):
            out.append(" ")
        elif span == 0:
            out.append(SPARK[3])
        else:
            out.append(SPARK[min(len(SPARK) - 1, int((v - lo) / span * (len(SPARK) - 1) + 0.5))])
    return "".join(out)


# --------------------------------------------------------------------------- locations

def location(f: Finding) -> str:
    """``file:line`` as a reader sees it; the folder itself when the finding has no file."""
    if not f.file:
        return "(folder)"
    return f"{f.file}:{f.line}" if f.line else f.file


def repo_path(report: Report, rec: RecordResult, file: str = "") -> str:
    """A posix path relative to the report root (the working directory): what SARIF and GitHub want.

    Record paths are already relative to the working directory when they can be; an absolute one
    outside it is made relative with ``..`` rather than leaking a machine's absolute layout.
    """
    base = PurePosixPath(rec.path.replace(os.sep, "/")) if rec.path else PurePosixPath(".")
    full = base / file if file else base
    s = full.as_posix()
    if full.is_absolute():
        root = Path(report.root or ".").absolute().as_posix()
        s = posixpath.relpath(s, root)
    s = posixpath.normpath(s)
    return "" if s == "." else s


def inside_folder(file: str) -> bool:
    """Finding files are relative to the record folder; one that is absolute or climbs out of it
    (e.g. a tokenizer the logs name) is no place in the repository."""
    if not file:
        return False
    p = posixpath.normpath(file.replace("\\", "/"))
    return not (p.startswith("/") or p == ".." or p.startswith("../") or re.match(r"^[A-Za-z]:/", p) or "://" in p)


def anchor_file(rec: RecordResult, f: Finding) -> tuple[str, int | None]:
    """The file a finding is shown on in the repository (SARIF, annotations). Folder-level findings
    have no file, and a file outside the folder has no place in the checkout; annotations and code
    scanning need one, so they go on the folder's submission.json (the record's manifest), or stay
    on the folder when there is none. ``location(f)`` still names the real file in the message."""
    if inside_folder(f.file):
        return f.file, (f.line if isinstance(f.line, int) and f.line >= 1 else None)
    if rec.claims.file and inside_folder(rec.claims.file):
        return rec.claims.file, None
    return "", None


# --------------------------------------------------------------------------- rules

def rule_catalog(report: Report | None = None) -> dict[str, RuleInfo]:
    """The catalog the audit loaded (``Report.rules``, filled by the pipeline; renderers never import
    the rules). A report built by hand has none: its findings then speak for their own rules."""
    return dict(report.rules) if report is not None and report.rules else {}


def rule_info(f: Finding, report: Report | None = None) -> RuleInfo:
    """The catalog entry of the finding's rule when the report has the catalog, else what the
    finding carries (its rule's code, title and family, set where it was made)."""
    info = report.rules.get(f.rule) if report is not None else None
    if info is not None:
        return info
    return RuleInfo(f.rule, f.code, f.title, f.ruling, f.fix, f.family or "misc", f.severity.value)


def one_line(text: str, limit: int = 300) -> str:
    """A message squeezed onto one line (messages may carry newlines from odd inputs)."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def printable(text: str) -> str:
    """Text that encodes as UTF-8: lone surrogates (undecodable bytes carried through from a
    submission's files) become "?" instead of crashing the write to stdout or a file."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
