"""The audited leaderboard: every record of a track with its verdict and admissible score, the
significance test against the frontier of its date, the audited frontier next to the claimed one,
and a row-by-row check of the challenge README's leaderboard table.

Input is a list of audited records (``RecordResult``) with where each came from (a ref and a path
in the repository, or a folder on disk); nothing here reads a record folder or runs a rule.

* The **claimed frontier** of a track on a date is the lowest claimed val_bpb of any record dated
  on or before it.
* The **audited frontier** is the lowest admissible score of a record that passes the audit, or
  that fails only through eval-time stages whose admissible score is a line of its logs
  (``auditor.admissible``). Records that need review are listed, not counted.
* **Significance**: each record's admissible per-seed values are tested against the audited frontier
  record of its date (the best one dated on or before it, itself excluded) under both rulebooks —
  the README rule (val_loss in nats, margin 0.005, p < 0.01) and the leaderboard practice (val_bpb,
  no margin, p < 0.25) — with ``auditor.stats.welch_one_sided``, the test STATS-SIGNIFICANCE uses.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date as Date
from typing import Any

from auditor.model import VERDICT_PASS, RecordResult, Severity
from auditor.stats import PRACTICE_ALPHA, README_ALPHA, README_DELTA_NATS, welch_one_sided

_DATE = re.compile(r"(\d{4})[-_](\d{2})[-_](\d{2})")
_PR_REF = re.compile(r"^refs/pull/(\d+)/")
TRACK_NAMES = {"10min": "track_10min_16mb", "non_record": "track_non_record_16mb"}


@dataclass
class Origin:
    """Where an audited record came from."""

    path: str  # the folder's path in the repository (records/track_…/…) or on disk
    ref: str | None = None  # the git ref it was read from
    pr: int | None = None


@dataclass
class Entry:
    track: str
    date: str | None
    pr: int | None
    folder: str
    ref: str | None
    display: str
    claimed: float | None
    verdict: str
    errors: list[str]
    admissible_status: str | None
    admissible: float | None
    admissible_reason: str | None
    excludes: list[str]
    admissible_evidence: list[str]
    bytes_total: int | None
    bytes_source: str | None
    n_seeds: int
    seed_bpb: list[float] = field(default_factory=list)
    seed_loss: list[float] = field(default_factory=list)
    against: str | None = None  # the frontier record of its date the tests compare with
    p_readme: float | None = None
    p_practice: float | None = None
    significant_readme: bool | None = None
    significant_practice: bool | None = None
    on_audited_frontier: bool = False
    on_claimed_frontier: bool = False

    @property
    def eligible(self) -> bool:
        """Counts for the audited frontier."""
        if self.admissible is None:
            return False
        return self.admissible_status == "derived" or (self.admissible_status == "measured" and self.verdict == VERDICT_PASS)


@dataclass
class FrontierPoint:
    date: str
    val_bpb: float
    folder: str
    pr: int | None


@dataclass
class ReadmeRow:
    table: str  # "10min" | "non_record"
    line: int
    run: str
    score: str
    author: str
    date: str
    link: str  # the "info" link target
    pr: int | None  # the PR the row links or names ("On PR #N")


@dataclass
class RowCheck:
    row: ReadmeRow
    folder: str | None  # the folder matched
    ref: str | None
    status: str  # "supported" | "mismatch" | "unmatched"
    reasons: list[str] = field(default_factory=list)
    claimed: float | None = None
    verdict: str | None = None
    admissible: float | None = None


@dataclass
class Leaderboard:
    entries: list[Entry]
    claimed_frontier: dict[str, list[FrontierPoint]]
    audited_frontier: dict[str, list[FrontierPoint]]
    readme: list[RowCheck] | None = None
    source: str = ""
    problems: list[str] = field(default_factory=list)


# --- building -------------------------------------------------------------------------------------

def pr_of_ref(ref: str | None) -> int | None:
    m = _PR_REF.match(ref or "")
    return int(m.group(1)) if m else None


def record_date(folder: str, claimed_date: str | None) -> str | None:
    """The folder name's date (how the repository orders records), else submission.json's."""
    name = folder.rstrip("/").rsplit("/", 1)[-1]
    m = _DATE.match(name)
    if m and _valid_date(*m.groups()):
        return "-".join(m.groups())
    m = _DATE.search(claimed_date or "")
    if m and _valid_date(*m.groups()):
        return "-".join(m.groups())
    return None


def _valid_date(y: str, mo: str, d: str) -> bool:
    try:
        Date(int(y), int(mo), int(d))
        return True
    except ValueError:
        return False


def entry_of(rec: RecordResult, origin: Origin) -> Entry:
    adm = rec.admissible
    errors = sorted({f.rule for f in rec.findings if not f.waived and f.severity == Severity.ERROR})
    seed_bpb: list[float] = []
    seed_loss: list[float] = []
    if adm is not None and adm.val_bpb is not None:
        seed_bpb = [s.val_bpb for s in adm.seeds if s.val_bpb is not None]
        seed_loss = [s.val_loss for s in adm.seeds if s.val_loss is not None]
    track = rec.track or rec.claims.track or "other"
    m = rec.measured
    total = m.bytes_total if m.bytes_total is not None else max((s.bytes_total for s in m.seeds if s.bytes_total), default=None)
    return Entry(
        track=track, date=record_date(origin.path, rec.claims.date), pr=origin.pr if origin.pr is not None else pr_of_ref(origin.ref),
        folder=origin.path, ref=origin.ref, display=rec.path, claimed=rec.claims.val_bpb, verdict=rec.verdict, errors=errors,
        admissible_status=getattr(adm, "status", None), admissible=getattr(adm, "val_bpb", None),
        admissible_reason=getattr(adm, "reason", None), excludes=list(getattr(adm, "excludes", []) or []),
        admissible_evidence=list(getattr(adm, "evidence", []) or []),
        bytes_total=total, bytes_source=m.bytes_source, n_seeds=len(m.seeds), seed_bpb=seed_bpb, seed_loss=seed_loss)


def _sort_key(e: Entry):
    return (e.date or "9999-99-99", e.pr if e.pr is not None else 1 << 30, e.folder)


def frontier(entries: list[Entry], value) -> list[FrontierPoint]:
    """Change points of the running minimum of ``value(entry)`` in date order."""
    out: list[FrontierPoint] = []
    best: float | None = None
    for e in sorted((e for e in entries if e.date), key=_sort_key):
        v = value(e)
        if v is None:
            continue
        if best is None or v < best:
            best = v
            out.append(FrontierPoint(e.date or "", v, e.folder, e.pr))
    return out


def _significance(entries: list[Entry]) -> None:
    """Each record against the best eligible record dated on or before it (itself excluded)."""
    dated = sorted((e for e in entries if e.date), key=_sort_key)
    for e in dated:
        if not e.seed_bpb:
            continue
        prev = [o for o in dated if o is not e and o.eligible and o.date and e.date and o.date <= e.date and o.seed_bpb]
        if not prev:
            continue
        best = min(prev, key=lambda o: o.admissible)
        e.against = best.ref + ":" + best.folder if best.ref else best.folder
        practice = welch_one_sided(best.seed_bpb, e.seed_bpb, 0.0)
        readme = welch_one_sided(best.seed_loss, e.seed_loss, README_DELTA_NATS) if best.seed_loss and e.seed_loss else None
        if practice is not None:
            e.p_practice = practice.p
            e.significant_practice = practice.p < PRACTICE_ALPHA
        if readme is not None:
            e.p_readme = readme.p
            e.significant_readme = readme.p < README_ALPHA


def build(records: list[tuple[RecordResult, Origin]], source: str = "") -> Leaderboard:
    entries = [entry_of(r, o) for r, o in records]
    entries.sort(key=lambda e: (e.track,) + _sort_key(e))
    claimed: dict[str, list[FrontierPoint]] = {}
    audited: dict[str, list[FrontierPoint]] = {}
    for track in sorted({e.track for e in entries}):
        mine = [e for e in entries if e.track == track]
        _significance(mine)
        claimed[track] = frontier(mine, lambda e: e.claimed)
        audited[track] = frontier(mine, lambda e: e.admissible if e.eligible else None)
        on_c = {(p.folder, p.date) for p in claimed[track]}
        on_a = {(p.folder, p.date) for p in audited[track]}
        for e in mine:
            e.on_claimed_frontier = (e.folder, e.date) in on_c
            e.on_audited_frontier = (e.folder, e.date) in on_a
    return Leaderboard(entries=entries, claimed_frontier=claimed, audited_frontier=audited, source=source)


# --- the README's leaderboard tables ----------------------------------------------------------------

_ROW = re.compile(r"^\|(.+)\|\s*$")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_PR_URL = re.compile(r"github\.com/openai/parameter-golf/pull/(\d+)")
_ON_PR = re.compile(r"\bOn PR #(\d+)")


def readme_rows(text: str) -> list[ReadmeRow]:
    """The rows of the README's leaderboard tables (``| Run | Score | Author | Summary | Date | Info |``).
    The first table is the 10-minute track; one under a heading naming non-record submissions is that track."""
    rows: list[ReadmeRow] = []
    table: str | None = None
    header: list[str] | None = None
    heading = ""
    n_tables = 0
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.startswith("#"):
            heading = line.lower()
            header = None
            continue
        m = _ROW.match(line.strip())
        if not m:
            header = None
            continue
        cells = [c.strip() for c in m.group(1).split("|")]
        low = [c.lower() for c in cells]
        if header is None:
            if "score" in low and "date" in low:
                header = low
                n_tables += 1
                table = "non_record" if ("non-record" in heading or "non_record" in heading or n_tables > 1) else "10min"
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        cell = dict(zip(header, cells + [""] * (len(header) - len(cells))))
        info = cell.get("info", "")
        links = _LINK.findall(info)
        link = links[0] if links else ""
        pr = None
        mm = _PR_URL.search(link)
        if mm:
            pr = int(mm.group(1))
        else:
            mm = _ON_PR.search(cell.get("summary", ""))
            pr = int(mm.group(1)) if mm else None
        rows.append(ReadmeRow(table=table or "10min", line=lineno, run=cell.get("run", ""), score=cell.get("score", ""),
                              author=cell.get("author", ""), date=cell.get("date", ""), link=link, pr=pr))
    return rows


def _folder_of_link(link: str) -> str | None:
    if link.startswith(("http://", "https://")):
        return None
    path = link.split("#", 1)[0].lstrip("./")
    if path.lower().endswith("/readme.md"):
        path = path[: -len("/README.md")]
    return path.rstrip("/") or None


def _score_ok(score: str, value: float | None) -> bool:
    """The row's score is the value rounded to the row's own decimals."""
    if value is None:
        return False
    try:
        s = float(score)
    except ValueError:
        return False
    decimals = len(score.split(".", 1)[1]) if "." in score else 0
    return abs(value - s) <= 0.5 * 10 ** -decimals + 1e-9


def _days(a: str, b: str) -> int | None:
    try:
        return (Date.fromisoformat(a) - Date.fromisoformat(b)).days
    except ValueError:
        return None


def check_row(row: ReadmeRow, entries: list[Entry], pr_refs_known: set[int] | None) -> RowCheck:
    folder = _folder_of_link(row.link)
    cands: list[Entry]
    if folder is not None:
        cands = [e for e in entries if e.folder == folder and (e.ref is None or pr_of_ref(e.ref) is None)]
        if not cands:
            return RowCheck(row, folder, None, "unmatched", [f"link: {folder} is not a record folder of the audited tree"])
    elif row.pr is not None:
        cands = [e for e in entries if e.pr == row.pr and e.ref and pr_of_ref(e.ref) == row.pr]
        # a merged PR: the folder as it sits on the audited branch is what the row stands for
        merged = [e for e in entries if (e.ref is None or pr_of_ref(e.ref) is None) and e.folder in {c.folder for c in cands}]
        cands = merged + cands
        if not cands:
            why = (f"link: PR #{row.pr} has no ref in the repository" if pr_refs_known is not None and row.pr not in pr_refs_known
                   else f"link: PR #{row.pr} adds no record folder that was audited")
            return RowCheck(row, None, f"refs/pull/{row.pr}/head", "unmatched", [why])
    else:
        return RowCheck(row, None, None, "unmatched", ["link: the row links neither a record folder nor a PR"])
    # several folders in one PR: the one whose claim the row states
    e = next((c for c in cands if _score_ok(row.score, c.claimed)), cands[0])
    rc = RowCheck(row, e.folder, e.ref, "supported", claimed=e.claimed, verdict=e.verdict, admissible=e.admissible)
    if e.claimed is None:
        rc.reasons.append("score: the folder claims no val_bpb")
    elif not _score_ok(row.score, e.claimed):
        rc.reasons.append(f"score: the row says {row.score}, the folder claims {e.claimed:g}")
    measured = sum(e.seed_bpb) / len(e.seed_bpb) if e.seed_bpb and e.admissible_status == "measured" else None
    if e.admissible_status == "measured" and measured is not None and not _score_ok(row.score, measured):
        rc.reasons.append(f"score: the logs give {measured:.5f} (mean of {len(e.seed_bpb)} seed finals), not {row.score}")
    if e.admissible_status == "derived":
        rc.reasons.append(f"audit: fails ({', '.join(e.errors)}); admissible {e.admissible:.4f} before the {', '.join(e.excludes)}")
    elif e.verdict == "fail":
        rc.reasons.append(f"audit: fails ({', '.join(e.errors)}); no admissible score ({e.admissible_reason})")
    if e.date and row.date and row.date != e.date:
        d = _days(row.date, e.date)
        rc.reasons.append(f"date: the row says {row.date}, the folder is dated {e.date}"
                          + (f" ({d:+d} days)" if d is not None else ""))
    if e.track != row.table:
        rc.reasons.append(f"track: the row is in the {row.table} table, the folder in {e.track}")
    if rc.reasons:
        rc.status = "mismatch"
    return rc


def crosscheck(lb: Leaderboard, readme_text: str, pr_refs_known: set[int] | None = None) -> list[RowCheck]:
    return attach(lb, [check_row(r, lb.entries, pr_refs_known) for r in readme_rows(readme_text)])


def attach(lb: Leaderboard, checks: list[RowCheck]) -> list[RowCheck]:
    """Give the board its README checks (made against the same or a larger set of records)."""
    lb.readme = checks
    for c in lb.readme:  # a merged folder learns its PR from the row that names it ("On PR #1493")
        if c.row.pr is None or c.folder is None:
            continue
        for e in lb.entries:
            if e.folder == c.folder and e.pr is None and (e.ref is None or pr_of_ref(e.ref) is None):
                e.pr = c.row.pr
    return lb.readme


# --- rendering --------------------------------------------------------------------------------------

def _f(x: float | None, nd: int = 4) -> str:
    return "—" if x is None else f"{x:.{nd}f}"


def _p(x: float | None) -> str:
    return "—" if x is None else (f"{x:.3f}" if x >= 0.001 else f"{x:.1e}")


def _sig(ok: bool | None, p: float | None) -> str:
    return "—" if ok is None else ("yes" if ok else "no") + f" (p={_p(p)})"


def _bytes(n: int | None) -> str:
    return "—" if n is None else f"{n:,}"


def _adm(e: Entry) -> str:
    if e.admissible is None:
        return "— " + (f"({e.admissible_reason})" if e.admissible_reason else "")
    return _f(e.admissible) + (f" (w/o {', '.join(e.excludes)})" if e.admissible_status == "derived" else "")


COLUMNS = ("date", "PR", "folder", "claimed", "verdict", "admissible", "bytes", "seeds", "README test", "practice test")


def _cells(e: Entry) -> list[str]:
    return [e.date or "—", f"#{e.pr}" if e.pr is not None else "—", e.folder.rsplit("/", 1)[-1], _f(e.claimed),
            e.verdict + ("" if not e.errors else f" ({', '.join(e.errors)})") if e.verdict == "fail" else e.verdict,
            _adm(e), _bytes(e.bytes_total), str(e.n_seeds),
            _sig(e.significant_readme, e.p_readme), _sig(e.significant_practice, e.p_practice)]


def _frontier_pairs(lb: Leaderboard, track: str) -> list[tuple[str, str, str]]:
    """(date, claimed frontier, audited frontier) at every date where either changes."""
    c = lb.claimed_frontier.get(track, [])
    a = lb.audited_frontier.get(track, [])
    dates = sorted({p.date for p in c} | {p.date for p in a})
    out = []
    for d in dates:
        cv = [p for p in c if p.date <= d]
        av = [p for p in a if p.date <= d]
        out.append((d, _point(cv[-1]) if cv else "—", _point(av[-1]) if av else "—"))
    return out


def _point(p: FrontierPoint) -> str:
    return f"{p.val_bpb:.4f} {p.folder.rsplit('/', 1)[-1]}" + (f" (#{p.pr})" if p.pr is not None else "")


def _text_table(header: list[str], rows: list[list[str]], limit: int = 60) -> list[str]:
    rows = [[c if len(c) <= limit else c[: limit - 1] + "…" for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return [fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]


def _summary(lb: Leaderboard) -> list[str]:
    n = len(lb.entries)
    fails = [e for e in lb.entries if e.verdict == "fail"]
    derived = [e for e in fails if e.admissible_status == "derived"]
    return [f"{n} record folders: {sum(e.verdict == 'pass' for e in lb.entries)} pass, "
            f"{sum(e.verdict == 'needs-review' for e in lb.entries)} need review, {len(fails)} fail "
            f"({len(derived)} of them with an admissible score from their logs)"]


def render_text(lb: Leaderboard) -> str:
    out = [f"pgolf leaderboard — {lb.source}".rstrip(" —"), *_summary(lb), ""]
    for track in sorted({e.track for e in lb.entries}):
        mine = [e for e in lb.entries if e.track == track]
        out.append(f"== {TRACK_NAMES.get(track, track)} ({len(mine)} records) ==")
        out += _text_table(list(COLUMNS), [_cells(e) for e in mine])
        out += ["", "frontier over time (claimed | audited):"]
        out += _text_table(["date", "claimed frontier", "audited frontier"], [list(r) for r in _frontier_pairs(lb, track)], 80)
        out.append("")
    if lb.readme is not None:
        out += _readme_text(lb.readme)
    for p in lb.problems:
        out.append(f"note: {p}")
    return "\n".join(out).rstrip() + "\n"


def _readme_text(checks: list[RowCheck]) -> list[str]:
    bad = [c for c in checks if c.status != "supported"]
    out = [f"README leaderboard: {len(checks)} rows, {len(checks) - len(bad)} supported by their folder, "
           f"{len(bad)} not ({sum(c.status == 'unmatched' for c in checks)} unmatched)"]
    rows = [[str(c.row.line), c.row.table, c.row.score, c.row.date, c.row.run, c.ref + ":" + c.folder if c.ref and c.folder
             else (c.folder or c.ref or "—"), c.status] for c in checks]
    out += _text_table(["line", "table", "score", "date", "run", "matched", "status"], rows, 70)
    if bad:
        out += ["", "rows the folder does not support:"]
        for c in bad:
            out.append(f"  README.md:{c.row.line} {c.row.run} ({c.row.score}, {c.row.date}):")
            out += [f"    - {r}" for r in c.reasons]
    return out + [""]


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"] + \
           ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]


def render_markdown(lb: Leaderboard) -> str:
    out = [f"# Audited leaderboard{f' — {lb.source}' if lb.source else ''}", "", *_summary(lb), ""]
    for track in sorted({e.track for e in lb.entries}):
        mine = [e for e in lb.entries if e.track == track]
        out += [f"## {TRACK_NAMES.get(track, track)}", ""]
        out += _md_table(list(COLUMNS), [_cells(e) for e in mine])
        out += ["", "### Frontier over time", ""]
        out += _md_table(["date", "claimed frontier", "audited frontier"], [list(r) for r in _frontier_pairs(lb, track)])
        out.append("")
    if lb.readme is not None:
        bad = [c for c in lb.readme if c.status != "supported"]
        out += ["## README leaderboard rows", "", f"{len(lb.readme)} rows, {len(lb.readme) - len(bad)} supported by their folder, "
                f"{len(bad)} not.", ""]
        out += _md_table(["line", "score", "date", "run", "matched", "status", "reasons"],
                         [[str(c.row.line), c.row.score, c.row.date, c.row.run, c.folder or c.ref or "—", c.status,
                           "; ".join(c.reasons)] for c in lb.readme])
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def to_json(lb: Leaderboard) -> dict[str, Any]:
    def pts(d: dict[str, list[FrontierPoint]]) -> dict[str, list[dict]]:
        return {k: [asdict(p) for p in v] for k, v in d.items()}

    return {
        "source": lb.source,
        "records": [asdict(e) | {"eligible": e.eligible} for e in lb.entries],
        "claimed_frontier": pts(lb.claimed_frontier),
        "audited_frontier": pts(lb.audited_frontier),
        "readme": None if lb.readme is None else [
            {"line": c.row.line, "table": c.row.table, "run": c.row.run, "score": c.row.score, "date": c.row.date,
             "link": c.row.link, "pr": c.row.pr, "folder": c.folder, "ref": c.ref, "status": c.status,
             "reasons": c.reasons, "claimed": c.claimed, "verdict": c.verdict, "admissible": c.admissible}
            for c in lb.readme],
        "problems": list(lb.problems),
    }


def render_json(lb: Leaderboard) -> str:
    return json.dumps(to_json(lb), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


CSV_FIELDS = ("track", "date", "pr", "folder", "ref", "claimed", "verdict", "errors", "admissible_status", "admissible",
              "admissible_reason", "excludes", "bytes_total", "bytes_source", "n_seeds", "against", "p_readme",
              "significant_readme", "p_practice", "significant_practice", "on_claimed_frontier", "on_audited_frontier")


def render_csv(lb: Leaderboard) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for e in lb.entries:
        row = []
        for k in CSV_FIELDS:
            v = getattr(e, k)
            row.append(";".join(v) if isinstance(v, list) else ("" if v is None else v))
        w.writerow(row)
    return buf.getvalue()


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json, "csv": render_csv}


def render_png(lb: Leaderboard, out, dpi: int = 110):
    """Both frontiers over time, one panel per track; returns the Figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tracks = [t for t in sorted(lb.claimed_frontier) if lb.claimed_frontier[t] or lb.audited_frontier.get(t)] or ["10min"]
    fig = Figure(figsize=(11, 4.2 * len(tracks)), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(tracks), 1, squeeze=False)[:, 0]
    for ax, track in zip(axes, tracks):
        for pts, label, style in ((lb.claimed_frontier.get(track, []), "claimed frontier", dict(color="C3", linestyle="--")),
                                  (lb.audited_frontier.get(track, []), "audited frontier (admissible, passing)",
                                   dict(color="C0", linestyle="-"))):
            if not pts:
                continue
            xs = [Date.fromisoformat(p.date) for p in pts]
            ys = [p.val_bpb for p in pts]
            last = max(Date.fromisoformat(e.date) for e in lb.entries if e.date and e.track == track)
            ax.step(xs + [last], ys + [ys[-1]], where="post", label=label, **style)
            ax.plot(xs, ys, "o", color=style["color"], markersize=3)
        others = [e for e in lb.entries if e.track == track and e.date and e.admissible is not None and e.eligible]
        if others:
            ax.plot([Date.fromisoformat(e.date) for e in others], [e.admissible for e in others], ".", color="C0", alpha=0.25,
                    markersize=3, label="admissible scores of eligible records")
        ax.set_title(TRACK_NAMES.get(track, track))
        ax.set_ylabel("val_bpb (lower is better)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
        ax.tick_params(axis="x", labelrotation=30)
    fig.savefig(out)
    return fig
