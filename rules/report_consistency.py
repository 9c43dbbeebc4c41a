"""REPORT-CONSISTENCY (rules.md §1.6): what submission.json claims must be what the logs show, and the
logs must come from the shipped code."""
from __future__ import annotations

import hashlib
from typing import Iterable

from auditor.evidence.submission import printed_decimals
from auditor.model import EvalLine, LogFile, RunLog, Severity
from rules.base import Invalid, Rule, Valid, register

CAP = 16_000_000


def tolerance(claim: float) -> float:
    """How far a logged value may sit from the claim and still be "the same number as printed".

    One unit in the claim's last printed digit (a claim may be truncated, or the mean of rounded
    per-seed lines), but never finer than 1e-4: scripts print the rounded twin of each score with four
    decimals, and claims are often computed from those. Two-decimal claims get half a unit (plain rounding).
    """
    d = printed_decimals(claim)
    if d <= 2:
        return 0.5 * 10.0 ** -d + 1e-12
    return max(10.0 ** -d, 1e-4 if d >= 4 else 0.0) + 1e-12


def shown(v: float) -> str:
    """A claim as submission.json wrote it (``1.2200``, not ``1.22``)."""
    return getattr(v, "text", None) or repr(v)


def same(a: float | None, b: float | None, tol: float) -> bool:
    return a is not None and b is not None and abs(a - b) <= tol


# ------------------------------------------------------------------------------------------------
# Cases (our own tiny logs in the baseline format)
CODE = "print('tiny model')\n"


def _log(seed: int, bpb: str, *, code: str | None = CODE, code_size: int | None = None, total: int = 15_000_000,
         extra_after: str = "") -> str:
    lines = []
    if code is not None:
        sha = hashlib.sha256(code.encode()).hexdigest()
        n = code.count("\n") + 1
        lines.append(f"[pgolf-corpus: embedded source code elided: {n} lines, {len(code.encode())} bytes, sha256={sha}]")
        lines.append("=" * 100)
    lines += [
        f"seed:{seed}",
        "world_size:8 grad_accum_steps:1",
        "step:0/20000 val_loss:6.9000 val_bpb:4.1000 train_time:0ms step_avg:0.01ms",
        "step:1/20000 train_loss:6.9000 train_time:40ms step_avg:40.00ms",
        "step:100/20000 train_loss:3.1000 train_time:4000ms step_avg:40.00ms",
        "step:100/20000 val_loss:2.5000 val_bpb:1.4800 train_time:4000ms step_avg:40.00ms",
        "stopping_early: wallclock_cap train_time:600010ms step:100/20000",
        f"Code size: {code_size if code_size is not None else len((code or CODE).encode())} bytes",
        f"Serialized model int8+zlib: {total - 1000} bytes",
        f"Total submission size int8+zlib: {total} bytes",
        f"final_int8_zlib_roundtrip val_loss:2.0700 val_bpb:{float(bpb):.4f} eval_time:1400ms",
        f"final_int8_zlib_roundtrip_exact val_loss:2.07000000 val_bpb:{bpb}",
    ]
    return "\n".join(lines) + "\n" + extra_after


def _folder(claim: str, seeds=(1, 2, 3), bpbs=("1.20000000", "1.21000000", "1.22000000"), **kw) -> dict[str, str]:
    files = {
        "README.md": "# tiny\n",
        "train_gpt.py": CODE,
        "submission.json": '{\n  "author": "a",\n  "github_id": "a",\n  "val_bpb": %s,\n  "bytes_total": 15000000\n}\n' % claim,
    }
    for s, b in zip(seeds, bpbs):
        files[f"train_seed{s}.log"] = _log(s, b, **kw)
    return files


@register
class ReportConsistency(Rule):
    """The numbers a submission reports must be the numbers its logs show, and the logs must have
    been produced by the code in the folder.

    Checks: the claimed val_bpb against the mean of the per-seed FINAL scores (records.md §3.4) at
    the claim's printed precision (a claim found on an earlier, non-final line is a warning that
    names the line; a claim found in no log is an error); per-seed ``seed_results`` against each
    seed's log; claimed bytes against the logged ``Total submission size <tag>``; the SHA-256 of the
    source embedded in a log against the shipped train_gpt.py; the logged ``Code size`` against the
    file's size.

    Ruling: README "train log, automatically produced by your script" and "Broken scripts will not be
    accepted"; PR #864 is the example of logs from an earlier commit than the submitted code.
    """

    id = "REPORT-CONSISTENCY"
    code = "PG701"
    title = "the reported numbers do not match the logs or the shipped code"
    family = "report"
    ruling = "https://github.com/openai/parameter-golf/pull/864"
    fix = "Report the mean of the per-seed final scores exactly as the logs print them, and ship the logs the submitted train_gpt.py produced."
    default_severity = Severity.ERROR

    VALID = [
        Valid(_folder("1.21"), note="mean of the three finals, two decimals"),
        Valid(_folder("1.21000000"), note="mean at full precision"),
        Valid(_folder("1.2100"), note="four decimals"),
        Valid({**_folder("1.2"), "submission.json": '{"author": "a", "val_bpb": "pending"}'}, note="no numeric claim: nothing to compare"),
        Valid(_folder("1.21", code=CODE.rstrip("\n"), code_size=len(CODE)), note="embedded code without the trailing newline"),
    ]
    INVALID = [
        Invalid(_folder("1.1500"), line=4, file="submission.json", note="claim in no log"),
        Invalid(_folder("1.4800"), expect=Severity.WARNING, line=4, file="submission.json",
                note="claim equals a mid-training val line"),
        Invalid(_folder("1.2000"), expect=Severity.WARNING, note="claim equals one seed's final, not the mean"),
        Invalid(_folder("1.21", code="print('other code')\n"), expect=Severity.WARNING, note="log embeds different code"),
        Invalid(_folder("1.21", code_size=999), expect=Severity.WARNING, note="logged Code size differs from the file"),
        Invalid({**_folder("1.21"), "submission.json": '{"author": "a", "val_bpb": 1.21, "bytes_total": 14000000}'},
                expect=Severity.WARNING, note="claims fewer bytes than the logs show"),
    ]

    def check(self, ctx) -> Iterable:
        ev = ctx.evidence
        if not ev.logs:
            return
        yield from self._score(ctx)
        yield from self._seed_results(ctx)
        yield from self._bytes(ctx)
        yield from self._code(ctx)

    # --- helpers -----------------------------------------------------------------------------
    def _claim_line(self, ctx, key: str) -> tuple[int | None, list[str]]:
        claims = ctx.evidence.claims
        line = claims.key_lines.get(key)
        lines = ctx.fact("submission_lines", _submission_lines)
        ev = [f"{claims.file}:{line}: {lines[line - 1].strip()}"] if line and lines and line <= len(lines) else []
        return line, ev

    @staticmethod
    def _logs_by_path(ctx) -> dict[str, LogFile]:
        return {lf.path: lf for lf in ctx.evidence.logs}

    @staticmethod
    def _cite(lf_path: str, e: EvalLine) -> str:
        return f"{lf_path}:{e.line}: {e.text.strip()}"

    # --- the score ---------------------------------------------------------------------------
    def _score(self, ctx):
        ev, m = ctx.evidence, ctx.measured
        claim = ev.claims.val_bpb
        if claim is None:
            return
        tol = tolerance(claim)
        line, cite = self._claim_line(ctx, "val_bpb")
        logs = self._logs_by_path(ctx)
        finals = []
        for s in m.seeds:
            lf = logs.get(s.log)
            run = lf.last_run if lf else None
            if run and run.final:
                finals.append((s, lf, run.final))
        final_cites = [self._cite(lf.path, f) for _, lf, f in finals[:4]]
        if m.val_bpb is not None and same(m.val_bpb, claim, tol):
            return
        where = ev.claims.file or "submission.json"
        mean_txt = f"{m.val_bpb:.8f}" if m.val_bpb is not None else "none"
        if len(finals) > 1:
            for s, lf, f in finals:
                if same(f.val_bpb, claim, tol):
                    yield self.finding(
                        where, line,
                        f"claimed val_bpb {shown(claim)} is the final of one log ({lf.path}" + (f", seed {s.seed}" if s.seed is not None else "")
                        + f"), not the mean of the "
                        f"{len(finals)} per-seed finals ({mean_txt})",
                        evidence=cite + final_cites, severity=Severity.WARNING,
                        fix="Report the mean over all seeds as val_bpb and list each seed in seed_results.")
                    return
        per_seed = self._mean_of_logged_seed_claims(ctx, claim, tol)
        if per_seed is not None:
            yield self.finding(
                where, line,
                f"claimed val_bpb {shown(claim)} is the mean of the per-seed values in seed_results, which appear in the logs, "
                f"but not all of them are their log's final score (the mean of the finals is {mean_txt}): {per_seed}",
                evidence=cite + final_cites, severity=Severity.WARNING,
                note="records.md §3.4: the final is the last post-training eval line that is not a diagnostic or pre-quantization score",
                fix="Report each seed's final score, or explain in the README why an earlier line is the score.")
            return
        hit = self._earlier_match(ctx, claim, tol)
        if hit is not None:
            lf, run, e = hit
            yield self.finding(
                where, line,
                f"claimed val_bpb {shown(claim)} appears in the logs only on a line that is not the final score "
                f"({e.label!r} at {lf.path}:{e.line}); the final score is {mean_txt}"
                + (" (mean of the per-seed finals)" if len(finals) > 1 else ""),
                evidence=cite + [self._cite(lf.path, e)] + final_cites, severity=Severity.WARNING,
                note="records.md §3.4: the final is the last post-training eval line that is not a diagnostic or pre-quantization score",
                fix="Report the final score of each run (the last post-training evaluation), or explain in the README why another line is the score.")
            return
        yield self.finding(
            where, line,
            f"claimed val_bpb {shown(claim)} matches no value in any log (final score {mean_txt}"
            + (f", {len(finals)} seeds" if len(finals) > 1 else "") + ")",
            evidence=cite + (final_cites or [f"{lf.path}: no score line" for lf in ev.logs[:4]]))

    @staticmethod
    def _mean_of_logged_seed_claims(ctx, claim: float, tol: float) -> str | None:
        """When the claim is the mean of ``seed_results`` and every per-seed value is on some line of that
        seed's log, say which seeds' values are not the final; else None."""
        ev = ctx.evidence
        vals = {s: r.get("val_bpb") for s, r in ev.claims.seed_results.items() if isinstance(r, dict)}
        vals = {s: v for s, v in vals.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if len(vals) < 2 or not same(sum(vals.values()) / len(vals), claim, tol):
            return None
        by_seed = {sm.seed: sm for sm in ctx.measured.seeds}
        logs = {lf.path: lf for lf in ev.logs}
        notes = []
        for seed, v in sorted(vals.items()):
            sm = by_seed.get(seed)
            lf = logs.get(sm.log) if sm else None
            if lf is None:
                return None
            t = tolerance(v)
            hits = [e for r in lf.runs for e in r.evals if same(e.val_bpb, v, t)]
            if not hits:
                return None
            if not same(sm.val_bpb, v, t):
                notes.append(f"seed {seed}: {v} is {hits[-1].label!r} at {lf.path}:{hits[-1].line}, the final is {sm.label!r} {sm.val_bpb}")
        return "; ".join(notes) if notes else None

    @staticmethod
    def _earlier_match(ctx, claim: float, tol: float) -> tuple[LogFile, RunLog, EvalLine] | None:
        best = None
        for lf in ctx.evidence.logs:
            for run in lf.runs:
                for e in run.evals:
                    if same(e.val_bpb, claim, tol):
                        best = (lf, run, e)
        return best

    # --- per-seed claims ---------------------------------------------------------------------
    def _seed_results(self, ctx):
        ev, m = ctx.evidence, ctx.measured
        by_seed = {s.seed: s for s in m.seeds if s.seed is not None}
        if not by_seed:
            return
        for seed, res in sorted(ev.claims.seed_results.items()):
            v = res.get("val_bpb") if isinstance(res, dict) else None
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            key = next((k for k in (f"seed_results.{seed}.val_bpb", f"seed_results.{seed}") if k in ev.claims.key_lines), "seed_results")
            line, cite = self._claim_line(ctx, key)
            sm = by_seed.get(seed)
            if sm is None:
                if seed not in {s for lf in ev.logs for s in [lf.seed_from_name] + [r.seed for r in lf.runs]}:
                    yield self.finding(ev.claims.file or "submission.json", line,
                                       f"seed_results lists seed {seed}, but no log of seed {seed} is in the folder",
                                       evidence=cite, severity=Severity.WARNING,
                                       fix="Add the log of every seed the submission reports.")
                continue
            if same(sm.val_bpb, v, tolerance(v)):
                continue
            lf = next((x for x in ev.logs if x.path == sm.log), None)
            final = lf.last_run.final if lf and lf.last_run else None
            yield self.finding(
                ev.claims.file or "submission.json", line,
                f"seed {seed}: claimed val_bpb {shown(v)} but its log's final score is {sm.val_bpb} ({sm.label})",
                evidence=cite + ([self._cite(lf.path, final)] if lf and final else []), severity=Severity.WARNING)

    # --- bytes -------------------------------------------------------------------------------
    def _bytes(self, ctx):
        ev, m = ctx.evidence, ctx.measured
        claimed = ev.claims.bytes_total
        if claimed is None:
            return
        logs = self._logs_by_path(ctx)
        worst = None
        for s in m.seeds:
            lf = logs.get(s.log)
            run = lf.last_run if lf else None
            if run and run.total_bytes and run.total_bytes.tag != "artifact":
                if worst is None or run.total_bytes.value > worst[1].total_bytes.value:
                    worst = (lf, run)
        if worst is None:
            return
        lf, run = worst
        logged = run.total_bytes.value
        if claimed >= logged:
            return
        line, cite = self._claim_line(ctx, "bytes_total")
        over = logged > CAP >= claimed
        totals = {lg.last_run.total_bytes.value for lg in logs.values() if lg.last_run and lg.last_run.total_bytes}
        if over:
            severity, why = Severity.ERROR, " (over the 16,000,000-byte cap)"
        elif claimed in totals:
            # the claim is one seed's logged total; another seed's artifact is larger
            severity, why = Severity.INFO, "; the claim is another seed's total"
        else:
            severity, why = Severity.WARNING, "; the claimed number is in no log"
        yield self.finding(
            ev.claims.file or "submission.json", line,
            f"claims bytes_total {claimed:,} but {lf.path} logs a total of {logged:,} bytes{why}",
            evidence=cite + [f"{lf.path}:{run.total_bytes.line}: {run.total_bytes.text.strip()}"],
            severity=severity,
            fix="Report the largest logged artifact total as bytes_total.")

    # --- code ----------------------------------------------------------------------------------
    def _code(self, ctx):
        ev = ctx.evidence
        entry = ev.code.get(ev.code.entry) if ev.code.entry else None
        if entry is None:
            return
        # a log may embed the entry script, or the sidecar an exec stub runs, or the decoded wrapper
        shas: set[str] = set()
        sizes: set[int] = set()
        for f in ev.code.files:
            if not f.is_python:
                continue
            raw = f.text.encode("utf-8", "surrogatepass")
            shas |= {f.sha256} | {hashlib.sha256(v).hexdigest() for v in (raw, raw.rstrip(b"\n"), raw + b"\n")}
            sizes |= {f.size_bytes, len(raw)}
        used = set(ctx.measured.extra.get("logs_used", [])) or {lf.path for lf in ev.logs}
        runs = [(lf, lf.last_run) for lf in ev.logs if lf.path in used and lf.last_run is not None]
        other_code = [(lf, b) for lf, run in runs for b in run.embedded_code if b.sha256 not in shas]
        if other_code:
            lf, b = other_code[0]
            n_with = sum(1 for _, run in runs if run.embedded_code)
            yield self.finding(
                lf.path, b.line,
                f"the source code embedded in {len({x.path for x, _ in other_code})} of {n_with} logs is not the shipped "
                f"{entry.path} (sha256 {entry.sha256[:12]}…): those logs were produced by other code",
                evidence=[f"{x.path}:{blk.line}: embedded source, {blk.n_lines} lines, sha256={blk.sha256}" for x, blk in other_code[:6]]
                + [f"{entry.path}: {entry.size_bytes} bytes, sha256={entry.sha256}"],
                severity=Severity.WARNING,
                fix="Re-run the submitted train_gpt.py and ship the logs it writes, or ship the code that wrote these logs.")
        size_diff = [(lf, run.code_bytes) for lf, run in runs
                     if run.code_bytes is not None and run.code_bytes.tag in (None, "uncompressed") and run.code_bytes.value not in sizes]
        if size_diff:
            lf, cs = size_diff[0]
            worst = max(abs(c.value - entry.size_bytes) for _, c in size_diff)
            small = worst <= 0.01 * max(entry.size_bytes, 1) and entry.size_bytes >= 1000
            yield self.finding(
                lf.path, cs.line,
                f"the logs give the code size as {', '.join(sorted({f'{c.value:,}' for _, c in size_diff}))} bytes, but the shipped "
                f"{entry.path} is {entry.size_bytes:,} bytes" + (" (a small edit after the runs)" if small else ""),
                evidence=[f"{x.path}:{c.line}: {c.text.strip()}" for x, c in size_diff[:6]] + [f"{entry.path}: {entry.size_bytes} bytes"],
                severity=Severity.INFO if small else Severity.WARNING,
                fix="Ship the train_gpt.py that produced the logs (its size is part of the artifact).")


def _submission_lines(ctx) -> list[str]:
    claims = ctx.evidence.claims
    if not claims.file:
        return []
    text = ctx.evidence.texts.get(claims.file)
    return text.split("\n") if text is not None else []
