"""Tolerant reader for submission.json (records.md §2): never raises.

Real files are messy: BOMs, Markdown fences, a leading ``json`` token, a shell heredoc around the
object, trailing or missing commas, two concatenated objects, numbers written as strings, and
placeholders (``"pending"``, ``"TBD"``) where numbers belong. Keys come in many spellings; this
module folds them into ``Claims`` (records.md §2.4). Every syntax repair goes to ``Claims.repairs``,
every value that could not be used to ``Claims.problems``, and the line of each key to
``Claims.key_lines`` (``"val_bpb"``, ``"seed_results.1337.val_bpb"``…) so findings can point at
``submission.json:LINE``.

Contract: ``read_claims(path, root, rel) -> Claims``.
"""
from __future__ import annotations

import bisect
import json
import math
import re
from pathlib import Path
from typing import Any

from auditor.fs import UnreadableFile, check_readable, read_text
from auditor.model import Claims, Problem


class Num(float):
    """A JSON number that remembers how it was written, so claims compare at their printed precision."""

    text: str

    def __new__(cls, text: str):
        obj = super().__new__(cls, float(text))
        obj.text = text
        return obj


def printed_decimals(value: float) -> int:
    """Digits after the decimal point as the claim was written (``1.0614`` → 4)."""
    text = getattr(value, "text", None) or repr(float(value))
    if "e" in text.lower():
        mant, _, exp = text.lower().partition("e")
        frac = mant.split(".")[1] if "." in mant else ""
        return max(0, len(frac) - int(exp))
    return len(text.split(".")[1]) if "." in text else 0


# ------------------------------------------------------------------------------------------------
# Lenient JSON
_FENCE = re.compile(r"^\s*```[\w-]*\s*$", re.M)
_JSON_TOKEN = re.compile(r"^\s*json\s*(?=[{\[])", re.I)
_HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?[^\n]*\n(.*?)\n\s*\1\s*(?:\n|$)", re.S)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=Num)


def lenient_json(text: str) -> tuple[Any, list[str], str | None]:
    """Parse ``text`` as leniently as records.md §2.4 allows: (object, repairs, error or None)."""
    repairs: list[str] = []
    try:
        return _loads(text), repairs, None
    except ValueError:
        pass
    work = text
    m = _HEREDOC.search(work)
    if m and "{" in m.group(2):
        work = m.group(2)
        repairs.append("unwrapped a shell heredoc around the JSON")
    if _FENCE.search(work):
        work = _FENCE.sub("", work)
        repairs.append("removed Markdown code fences")
    if _JSON_TOKEN.match(work):
        work = _JSON_TOKEN.sub("", work, count=1)
        repairs.append("removed a leading 'json' token")
    start = work.find("{")
    if start < 0:
        return None, repairs, "no JSON object found"
    if work[:start].strip():
        repairs.append("ignored text before the first '{'")
    work = work[start:]
    if _TRAILING_COMMA.search(work):
        fixed = _TRAILING_COMMA.sub(r"\1", work)
        if fixed != work:
            try:
                _loads(fixed)
                work = fixed
                repairs.append("removed trailing commas")
            except ValueError as exc:
                if "delimiter" in str(exc) or "Extra data" in str(exc):
                    work = fixed
                    repairs.append("removed trailing commas")
    decoder = json.JSONDecoder(parse_float=Num)
    last_err = ""
    for _ in range(20):  # each round may insert one missing comma
        try:
            obj, end = decoder.raw_decode(work)
        except json.JSONDecodeError as exc:
            last_err = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
            if exc.msg == "Expecting ',' delimiter":
                work = work[: exc.pos].rstrip() + "," + work[exc.pos:]
                if "inserted a missing comma" not in repairs:
                    repairs.append("inserted a missing comma")
                continue
            return None, repairs, f"invalid JSON: {last_err}"
        if work[end:].strip():
            rest = work[end:].strip()
            repairs.append("accepted the first of several JSON objects" if rest.startswith("{") else "ignored text after the JSON object")
        return obj, repairs, None
    return None, repairs, f"invalid JSON: {last_err}"


# ------------------------------------------------------------------------------------------------
# Key line numbers
_TOKENS = re.compile(r'"((?:[^"\\\n]|\\.)*)"(\s*:)?|[{}\[\]]')


def key_line_map(text: str) -> dict[str, int]:
    """Map each key path (``val_bpb``, ``seed_results.1337.val_bpb``) to its first 1-based line."""
    nl = [i for i, ch in enumerate(text) if ch == "\n"]
    out: dict[str, int] = {}
    stack: list[str | None] = []  # key path element that opened each container
    pending: str | None = None
    for m in _TOKENS.finditer(text):
        tok = m.group(0)
        if tok in "{[":
            stack.append(pending)
            pending = None
        elif tok in "}]":
            if stack:
                stack.pop()
            pending = None
        elif m.group(2):
            key = m.group(1)
            path = ".".join([p for p in stack if p is not None] + [key])
            out.setdefault(path, bisect.bisect_left(nl, m.start()) + 1)
            pending = key
        else:
            pending = None
    return out


# ------------------------------------------------------------------------------------------------
# Folding the spellings
# Known placeholder forms, each anchored to the whole value: a real name ("Will DePue", "Na Li",
# "Nan Liu", "Fillip") must never read as one, so there is no open-ended prefix like ``will .*``
# ("nan" as a number is still refused: it is not a finite number).
_PLACEHOLDER = re.compile(
    r"""^\s*(?:
        | pending | tbd\w* | tba | todo | none | null | unknown | xxx+ | \?+ | -+ | yyyy-mm-dd
        | n/a (?:\s*[-:,(].*)?
        | (?:wip\s*[-:]?\s*)? placeholder\b.* | wip | work\s+in\s+progress | in.progress (?:\s*[-:,(].*)?
        | fill (?:_\w* | \s+(?:in|me|later|after)\b.*)? | fill\s*me\s*in
        | <.*> | \[.*\] | \{.*\}
        | to\s+be\s+(?:added|determined|announced|filled|updated|confirmed|reported|measured|computed|decided|provided)\b.*
        | will\s+(?:be\s+)?(?:add|added|update|updated|fill|filled|post|posted|provide|provided|report|reported
                            |confirm|confirmed|measure|measured|compute|computed|announce|announced)\b.*
        | see\s+readme\b.*
    )\s*$""",
    re.I | re.X,
)
_NUMBER = re.compile(r"^\s*[~≈]?\s*([-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)\s*$")
_LEADING_NUMBER = re.compile(r"^\s*[~≈]?\s*([-+]?\d+\.\d+)\b")

VAL_BPB_KEYS = ("val_bpb", "mean_val_bpb", "val_bpb_mean", "mean_bpb", "three_seed_mean_bpb", "val_bpb_exact",
                "final_val_bpb", "avg_val_bpb", "val_bpb_avg")
VAL_LOSS_KEYS = ("val_loss", "mean_val_loss", "val_loss_mean")
BYTES_TOTAL_KEYS = ("bytes_total", "total_bytes", "artifact_bytes", "artifact_bytes_max", "artifact_size_bytes",
                    "total_submission_bytes", "submission_bytes", "artifact_bytes_mean")
BYTES_CODE_KEYS = ("bytes_code", "code_bytes", "code_size_bytes", "wrapped_code_bytes", "code_compressed_bytes")
STD_KEYS = ("val_bpb_std", "std_val_bpb", "three_seed_std_bpb", "std_bpb", "val_bpb_stdev", "bpb_std")
AUTHOR_KEYS = ("author", "authors", "author_name")
GITHUB_KEYS = ("github_id", "github", "github_user", "github_username", "github_handle")
_SEED_IN_KEY = re.compile(r"(\d+)")
_PER_SEED_KEY = re.compile(r"^(val_bpb|bpb|val_loss|bytes|bytes_total|artifact_bytes)_seed[_-]?(\d+)$")
_SEED_OBJ_KEY = re.compile(r"^seed[_-]?(\d+)$")
_PER_SEED_LIST_KEYS = ("val_bpb_seeds", "val_bpb_per_seed", "per_seed_val_bpb", "seed_val_bpb", "val_bpbs")
_INNER_BPB = ("val_bpb", "bpb", "val_bpb_exact", "final_val_bpb", "final_bpb", "score")
_INNER_BYTES = ("bytes_total", "artifact_bytes", "total_bytes", "artifact_size_bytes", "bytes")


def to_number(value: Any) -> tuple[float | None, str | None]:
    """(number, note): numbers pass, numeric strings convert (note says so), placeholders give None."""
    if isinstance(value, bool) or value is None:
        return None, None if value is None else f"boolean {value!r} where a number belongs"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return None, f"{value!r} is not a finite number"
        return value, None
    if isinstance(value, str):
        m = _NUMBER.match(value)
        if m:
            n = Num(m.group(1))
            if not math.isfinite(n):
                return None, f"{value!r} is not a finite number"
            return n, f"number written as a string ({value!r})"
        if _PLACEHOLDER.match(value):
            return None, f"placeholder {value!r}, not a number"
        m = _LEADING_NUMBER.match(value)
        if m:
            return Num(m.group(1)), f"took the leading number of {value!r}"
        return None, f"{value!r} is not a number"
    if isinstance(value, dict):
        for k in ("mean", "value", "val_bpb", "avg"):
            if k in value:
                n, _ = to_number(value[k])
                if n is not None:
                    return n, f"took {k!r} from an object"
        return None, "an object where a number belongs"
    return None, f"{type(value).__name__} where a number belongs"


def _seed_of(key: Any) -> int | None:
    if isinstance(key, bool):
        return None
    if isinstance(key, int):
        return key
    if isinstance(key, float) and key.is_integer():
        return int(key)
    if isinstance(key, str):
        m = _SEED_IN_KEY.search(key)
        if m and len(m.group(1)) <= 12:
            return int(m.group(1))
    return None


def _inner(values: Any) -> dict[str, Any]:
    """One seed's result, with numbers converted and ``val_bpb``/``bytes_total`` folded in."""
    if not isinstance(values, dict):
        n, _ = to_number(values)
        return {"val_bpb": n} if n is not None else {}
    out: dict[str, Any] = {}
    for k, v in values.items():
        n, _ = to_number(v) if not isinstance(v, (dict, list)) else (None, None)
        out[k] = n if n is not None else v
    for canon, keys in (("val_bpb", _INNER_BPB), ("bytes_total", _INNER_BYTES)):
        if not isinstance(out.get(canon), (int, float)) or isinstance(out.get(canon), bool):
            for k in keys:
                if isinstance(out.get(k), (int, float)) and not isinstance(out.get(k), bool):
                    out[canon] = out[k]
                    break
            else:
                out.pop(canon, None) if out.get(canon) is None else None
    return out


class _Folder:
    def __init__(self, claims: Claims, obj: dict[str, Any]):
        self.c = claims
        self.obj = obj

    def problem(self, msg: str) -> None:
        self.c.problems.append(Problem(self.c.file or "submission.json", msg))

    def number(self, canon: str, keys: tuple[str, ...], integer: bool = False):
        """First usable value among ``keys``; notes strings, placeholders and synonyms."""
        notes = []
        for k in keys:
            if k not in self.obj:
                continue
            n, note = to_number(self.obj[k])
            if note:
                notes.append(f"{k}: {note}")
            if n is None:
                continue
            if k != canon:
                self.c.repairs.append(f"{canon} taken from {k!r}")
                if k in self.c.key_lines:
                    self.c.key_lines[canon] = self.c.key_lines[k]
            self.note(notes)
            if integer:
                if float(n).is_integer():
                    return int(n)
                self.problem(f"{k}: {n!r} is not a whole number of bytes")
                return int(round(n))
            return n
        self.note(notes)
        return None

    def note(self, notes: list[str]) -> None:
        for nt in notes:
            if "as a string" in nt:
                self.c.repairs.append(nt)
            else:
                self.problem(nt)

    def text(self, keys: tuple[str, ...]) -> str | None:
        for k in keys:
            v = self.obj.get(k)
            if v is None:
                continue
            if isinstance(v, list):
                v = ", ".join(str(x.get("name", x)) if isinstance(x, dict) else str(x) for x in v)
            elif isinstance(v, dict):
                v = v.get("name") or v.get("github") or json.dumps(v)
            v = str(v).strip()
            if not v or _PLACEHOLDER.match(v):
                self.problem(f"{k}: placeholder {self.obj.get(k)!r}")
                continue
            return v
        return None


def normalise_track(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    low = value.strip().lower().replace("-", "_")
    if "non" in low:
        return "non_record"
    if "10min" in low or "10_min" in low or low in ("record", "main", "track_10min_16mb"):
        return "10min"
    return None


def fold(claims: Claims, obj: dict[str, Any]) -> None:
    """Fill ``claims`` from a parsed object, folding the synonyms of records.md §2.2."""
    f = _Folder(claims, obj)
    claims.raw = obj
    claims.val_bpb = f.number("val_bpb", VAL_BPB_KEYS)
    if claims.val_bpb is None:
        why = "no claimed score (val_bpb is absent"
        if "val_bpb" in obj:
            why = f"no claimed score (val_bpb is {obj['val_bpb']!r}"
        f.problem(why + ")")
    claims.val_loss = f.number("val_loss", VAL_LOSS_KEYS)
    claims.bytes_total = f.number("bytes_total", BYTES_TOTAL_KEYS, integer=True)
    claims.bytes_code = f.number("bytes_code", BYTES_CODE_KEYS, integer=True)
    claims.val_bpb_std = f.number("val_bpb_std", STD_KEYS)
    claims.author = f.text(AUTHOR_KEYS)
    claims.github_id = f.text(GITHUB_KEYS)
    claims.name = f.text(("name", "title"))
    claims.date = f.text(("date",))
    if "track" in obj:
        claims.track = normalise_track(obj.get("track"))
        if claims.track is None:
            f.problem(f"track: unknown spelling {obj.get('track')!r}")
    _fold_seeds(claims, obj)


def _fold_seeds(claims: Claims, obj: dict[str, Any]) -> None:
    results: dict[int, dict[str, Any]] = {}
    sr = obj.get("seed_results")
    if isinstance(sr, dict):
        for k, v in sr.items():
            s = _seed_of(k)
            if s is not None:
                results[s] = _inner(v)
    elif isinstance(sr, list):
        for i, item in enumerate(sr):
            if isinstance(item, dict):
                s = _seed_of(item.get("seed"))
                if s is not None:
                    results[s] = _inner(item)
    seeds_raw = obj.get("seeds")
    seeds: list[int] = []
    if isinstance(seeds_raw, list):
        for x in seeds_raw:
            if isinstance(x, dict):
                s = _seed_of(x.get("seed"))
                if s is not None:
                    results.setdefault(s, _inner(x))
            else:
                s = _seed_of(x)
            if s is not None:
                seeds.append(s)
    elif isinstance(seeds_raw, dict):
        for k, v in seeds_raw.items():
            s = _seed_of(k)
            if s is not None:
                seeds.append(s)
                if v is not None and not isinstance(v, (str, bool)):
                    results.setdefault(s, _inner(v))
    elif seeds_raw is not None:
        s = _seed_of(seeds_raw)
        if s is not None:
            seeds.append(s)
    # per-seed data spread over top-level keys
    for k, v in obj.items():
        m = _SEED_OBJ_KEY.match(k)
        if m and isinstance(v, dict):
            results.setdefault(int(m.group(1)), _inner(v))
            continue
        m = _PER_SEED_KEY.match(k)
        if m:
            n, _ = to_number(v)
            if n is not None:
                field = {"bpb": "val_bpb", "bytes": "bytes_total", "artifact_bytes": "bytes_total"}.get(m.group(1), m.group(1))
                results.setdefault(int(m.group(2)), {})[field] = n
    for k in _PER_SEED_LIST_KEYS:
        v = obj.get(k)
        if isinstance(v, dict):
            for sk, sv in v.items():
                s = _seed_of(sk)
                n, _ = to_number(sv)
                if s is not None and n is not None:
                    results.setdefault(s, {}).setdefault("val_bpb", n)
        elif isinstance(v, list) and seeds and len(v) == len(seeds):
            for s, sv in zip(seeds, v):
                n, _ = to_number(sv)
                if n is not None:
                    results.setdefault(s, {}).setdefault("val_bpb", n)
    if not seeds:
        seeds = sorted(results)
    claims.seeds = list(dict.fromkeys(seeds))
    claims.seed_results = results


# The largest real submission.json is about 8 kB; a megabyte is far beyond any honest one, and
# parsing 16 MB of numbers costs gigabytes of Python objects (and every copy of them downstream).
MAX_SUBMISSION_BYTES = 1 << 20


def read_claims(path: Path, root: Path, rel: str) -> Claims:
    claims = Claims(file=rel)
    try:
        size = check_readable(path, root, max_bytes=1 << 62)
        if size > MAX_SUBMISSION_BYTES:
            claims.problems.append(Problem(rel, f"too large: {size:,} bytes, over the {MAX_SUBMISSION_BYTES:,}-byte cap for "
                                                "a submission.json; not read"))
            return claims
        tf = read_text(path, root, max_bytes=MAX_SUBMISSION_BYTES)
    except UnreadableFile as exc:
        claims.problems.append(Problem(rel, str(exc)))
        return claims
    try:
        parse_claims_text(tf.text, claims)
        claims.repairs[:0] = [r for r in tf.repairs if "CRLF" not in r]
    except Exception as exc:  # the reader must never take the audit down
        claims.problems.append(Problem(rel, f"could not read the claims ({type(exc).__name__}: {exc})"))
    return claims


def parse_claims_text(text: str, claims: Claims | None = None) -> Claims:
    """Parse decoded submission.json text into ``claims`` and return it."""
    claims = claims or Claims(file="submission.json")
    rel = claims.file or "submission.json"
    if text.startswith("\ufeff"):
        text = text[1:]
        claims.repairs.append("stripped a UTF-8 byte-order mark")
    obj, repairs, err = lenient_json(text)
    claims.repairs.extend(repairs)
    if err:
        claims.problems.append(Problem(rel, err))
        return claims
    if isinstance(obj, list):
        dicts = [o for o in obj if isinstance(o, dict)]
        if dicts:
            claims.repairs.append("the file holds a list; read its first object")
            obj = dicts[0]
    if not isinstance(obj, dict):
        claims.problems.append(Problem(rel, f"expected a JSON object, found {type(obj).__name__}"))
        return claims
    claims.key_lines = key_line_map(text)
    fold(claims, obj)
    return claims


# ------------------------------------------------------------------------------------------------
# What crosses from a worker to the main process: the claims, bounded (an audit of many folders
# must not hold every folder's parsed JSON; the rules have used it by then).
MAX_RAW_CHARS = 64 * 1024
MAX_SEEDS = 1000
MAX_KEY_LINES = 2000
MAX_NOTES = 100


def cap_claims(claims: Claims) -> Claims:
    """Bound ``claims`` for the trip to the main process; says what was cut in ``repairs``. Idempotent."""
    cut: list[str] = []
    raw = claims.raw if isinstance(claims.raw, dict) else {}
    try:
        size = len(json.dumps(raw, default=str))
    except (TypeError, ValueError, RecursionError):
        size = MAX_RAW_CHARS + 1
    if size > MAX_RAW_CHARS:
        small, used = {}, 0
        for k, v in raw.items():
            if isinstance(v, (dict, list)):
                continue
            text = repr(v)
            if used + len(text) + len(str(k)) > MAX_RAW_CHARS // 2:
                break
            small[k] = v
            used += len(text) + len(str(k))
        small["_pgolf_truncated"] = f"{size:,} characters of JSON; only short top-level values kept"
        claims.raw = small
        cut.append("the parsed submission.json")
    if len(claims.seeds) > MAX_SEEDS:
        cut.append(f"{len(claims.seeds) - MAX_SEEDS:,} seeds")
        claims.seeds = claims.seeds[:MAX_SEEDS]
    if len(claims.seed_results) > MAX_SEEDS:
        cut.append(f"{len(claims.seed_results) - MAX_SEEDS:,} seed results")
        claims.seed_results = dict(list(claims.seed_results.items())[:MAX_SEEDS])
    for s, res in list(claims.seed_results.items()):
        if isinstance(res, dict) and any(isinstance(v, (dict, list)) for v in res.values()):
            claims.seed_results[s] = {k: v for k, v in res.items() if not isinstance(v, (dict, list))}
    if len(claims.key_lines) > MAX_KEY_LINES:
        claims.key_lines = dict(list(claims.key_lines.items())[:MAX_KEY_LINES])
    for name in ("repairs", "problems"):
        items = getattr(claims, name)
        if len(items) > MAX_NOTES:
            setattr(claims, name, items[:MAX_NOTES])
            cut.append(f"{len(items) - MAX_NOTES} {name}")
    if cut:
        claims.repairs.append("report cap: kept out of the report: " + ", ".join(cut))
    return claims
