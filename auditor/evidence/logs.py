"""Train-log reader (records.md §3): one pass over a log, never raises.

A log is either a console capture (torchrun banner, NCCL warnings, ``[rankN]:`` tracebacks) or the
script's own logfile, which starts with the whole source of the script. Both kinds may hold several
runs. Naive greps of the raw file are wrong: the embedded source contains the very format strings the
score lines are printed with. So this reader

1. cleans each line (ANSI colours, ``[default0]:``/``[rank3]:`` tee prefixes, unix or datetime
   timestamp prefixes),
2. cuts out embedded source blocks, keeping the SHA-256 of each (lines joined with "\\n", the same
   convention as the corpus marker ``[pgolf-corpus: embedded source code elided: …]``),
3. splits the file into runs at header boundaries (``Running PyTorch``, ``Hyperparameters:``, a source
   block, a repeated header field, ``step:0/``),
4. extracts per run the facts rules need, with the ORIGINAL line numbers, and
5. picks each run's FINAL score by the algorithm of records.md §3.4.

Contract: ``read_log(path, root, rel) -> LogFile``.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

from auditor.fs import UnreadableFile, decode_text, read_bytes
from auditor.model import EmbeddedCode, EvalLine, LogFile, Problem, RunLog, SizeLine

# ---------------------------------------------------------------------------------------------
# Line cleaning
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PREFIX = re.compile(
    r"^(?:\[(?:default|rank)\d+\]:"  # torchrun --tee / rank prefixes
    r"|\d{10}(?:\.\d+)?\s"  # unix timestamp "1776142348.135 "
    r"|\[?\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\]?(?:\s*-)?\s*(?:(?:INFO|DEBUG|WARNING|WARN|ERROR)\b\s*[:\-]?\s*)?"
    r")"
)


def clean_line(line: str) -> str:
    """Strip ANSI colours and the prefixes that tee/timestamps put in front of a log line."""
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    if line and line[0] in "[0123456789":
        for _ in range(3):  # "[default0]:1776142348.1 ..." stacks prefixes
            m = _PREFIX.match(line)
            if not m or m.end() == 0:
                break
            line = line[m.end():]
    return line


# ---------------------------------------------------------------------------------------------
# Embedded source code
CORPUS_MARKER = re.compile(
    r"^\[pgolf-corpus: embedded source code elided: (\d+) lines, (\d+) bytes, sha256=([0-9a-f]{64})\]\s*$"
)
_SEPARATOR = re.compile(r"^={40,}\s*$")
_CODE_START = re.compile(r'^(?:"""|\'\'\'|import [\w.]+|from [\w.]+ import |def \w+\(|class \w+[(:]|exec\()')
_PYTHONISH = re.compile(
    r"^(?:\s|$|#|@|\)|\]|\}|\"\"\"|'''|(?:import|from|def|class|if|elif|else|try|except|finally|for|while|with|"
    r"return|async|await|global|assert|raise|del|pass)\b|[A-Za-z_][\w.,\[\] ]*\s*[+\-*/|&]?=|[A-Za-z_][\w.]*\(|"
    r"[A-Za-z_]\w*\s*:\s*[A-Za-z_][\w\[\], .|\"']*\s*(?:=|$))"
)
_LOGLIKE = re.compile(
    r"^(?:[A-Za-z_][\w\-.]*:\S|[A-Za-z_][\w\-.]*: \d|Running |Hyperparameters:|Source code:|W\d{4} |\[W\d|NCCL|\d+/\d+ |"
    r"\[pgolf-corpus|step:|logs/)"
)
_MIN_CODE_LINES = 8


def _code_block_end(lines: list[str], start: int) -> tuple[int, int]:
    """Scan a candidate source block from ``start``; return (end, pythonish_count), end exclusive."""
    n = len(lines)
    j = start + 1
    pyish = 1
    in_doc = lines[start].startswith(('"""', "'''")) and lines[start].count('"""') + lines[start].count("'''") == 1
    while j < n:
        raw = lines[j]
        if _SEPARATOR.match(raw):
            break
        if in_doc:
            if '"""' in raw or "'''" in raw:
                in_doc = False
            j += 1
            continue
        if raw and not raw[0].isspace():
            if raw.startswith(('"""', "'''")):
                if raw.count('"""') + raw.count("'''") == 1:
                    in_doc = True
            elif _LOGLIKE.match(raw) and not _PYTHONISH.match(raw):
                break
            elif not _PYTHONISH.match(raw):
                # a column-0 line that is neither code nor a known log form: look at the next one
                if j + 1 < n and lines[j + 1] and not lines[j + 1][0].isspace() and not _PYTHONISH.match(lines[j + 1]):
                    break
        if raw.strip():
            pyish += 1
        j += 1
    return j, pyish


# ---------------------------------------------------------------------------------------------
# Line catalogue (records.md §3.2)
_TRAIN = re.compile(r"^(?:step[:\s]\s*)?(\d+)/(\d+)\s+train_loss[:=]\s*([\d.]+|nan|inf)(.*)$", re.I)
_TRAIN_TIME_MS = re.compile(r"train_time[:=]\s*(\d+(?:\.\d+)?)ms")
_TRAIN_TIME_MIN = re.compile(r"train_time[:=]\s*(\d+(?:\.\d+)?)m\b")
_STEP_AVG = re.compile(r"step_avg[:=]\s*(\d+(?:\.\d+)?)ms")
_STEP_VAL = re.compile(r"^(?:step[:\s]\s*)?(\d+)(?:/(\d+))?\b.*?\bval_loss[:=]\s*(\d+(?:\.\d+)?).*?\bval_bpb[:=]\s*(\d+(?:\.\d+)?)")
_EVAL = re.compile(
    r"^(?P<label>.*?)\s*\b(?:val_loss|loss)[:=]\s*(?P<loss>\d+\.\d+|\d+)[\s,|]+val_bpb[:=]\s*(?P<bpb>\d+\.\d+|\d+)(?P<rest>.*)$"
)
_EVAL_BPB_ONLY = re.compile(r"^(?P<label>[A-Za-z_][\w\-.+ ]*?)\s+val_bpb[:=]\s*(?P<bpb>\d+\.\d+)(?P<rest>.*)$")
# "<label> key:value ... *_bpb:F ...": scores printed under other names (ngram_bpb, diffusion_pll_bpb, bpb)
_EVAL_KV = re.compile(r"^(?P<label>[A-Za-z_][\w\-.+]*)\s+(?P<rest>(?:[\w\-.]+[:=]\s*\S+\s*)+)$")
_BPB_TOKEN = re.compile(r"(?:^|\s)([\w\-.]*bpb)[:=]\s*(\d+\.\d+)")
_LOSS_TOKEN = re.compile(r"(?:^|\s)([\w\-.]*loss)[:=]\s*(\d+\.\d+)")
_NOT_SCORE_KEY = re.compile(r"delta|best|running|before|after|est_|_std|improv", re.I)
# summary blocks ("---" then "val_bpb:          1.194716", "Quantized BPB: 1.027163", "- val_bpb: F")
_EVAL_SUMMARY = re.compile(r"^\s*(?:[-*]\s*)?(?P<label>[A-Za-z][\w +\-()]*?)?\s*\b(?:val_bpb|BPB|bpb)\s*[:=]\s*(?P<bpb>\d+\.\d+)(?P<rest>.*)$")
_EVAL_TIME = re.compile(r"eval_time[:=]\s*(\d+(?:\.\d+)?)ms")
_ELAPSED = re.compile(r"elapsed[:=]\s*(\d+(?:\.\d+)?)s\b")
_STOP = re.compile(r"stopping_early\b.*?train_time[^:]*:\s*(\d+(?:\.\d+)?)ms(?:.*?step:\s*(\d+)(?:/(\d+))?)?")
_STOP_STEP_ONLY = re.compile(r"stopping_early\b.*?step:\s*(\d+)(?:/(\d+))?")
_SEED = re.compile(r"^\s*seed\s*[:=]\s*(\d+)\b", re.I)
_WORLD = re.compile(r"^world_size:\s*(\d+)(?:\s+grad_accum_steps:\s*(\d+))?")
_ITERS = re.compile(r"\biterations:\s*(\d+)")
_MAXWALL = re.compile(r"\bmax_wallclock_seconds:\s*(\d+(?:\.\d+)?)")
_GPTQ = re.compile(r"^gptq:reserving\s+(\d+(?:\.\d+)?)(ms|s)\b")
_TOKENIZER = re.compile(r"tokenizer_path=(\S+)")
_TRAIN_SHARDS = re.compile(r"(?:^|\s|:)train_shards:\s*(\d+)")
_VAL_TOKENS = re.compile(r"^(?:val_loader:.*?tokens:|val_tokens:\s*)(\d+)")
_TOTAL_EVAL = re.compile(r"^total_eval_time:\s*(\d+(?:\.\d+)?)s")
_CODE_SIZE = re.compile(r"^Code size(?: \((\w+)\))?:\s*(\d+) bytes")
_MODEL_SIZE = re.compile(r"^Serialized model ([^:\s][^:]*):\s*(\d+) bytes")
_TOTAL_SIZE = re.compile(r"^Total submission size ([^:\s][^:]*):\s*(\d+) bytes")
_ARTIFACT = re.compile(r"^\s*Artifact(?: size)?:\s*([\d,]+) bytes")
_DUMP = re.compile(r"^  ([A-Za-z_]\w*):\s?(.*)$")

# Labels whose score is not the submission's (records.md §3.4 step 2) and progress/sweep lines.
_NOT_FINAL = re.compile(
    r"diagnostic|pre-quant|pre_quant|prequant|post_ema|post-ema|post_average|post_swa|raw model|neural_only|"
    r"sweep|search|ablation|epoch|pass \d+ done|running_bpb|candidate|best_|selected_state|checkpoint|\[\s*\d+/\d+\]|"
    r"chunk|progress|snapshot|calib|rank_|\bema\b|\bswa\b|_eval_seq|teacher",
    re.I,
)
_PROGRESS_PREFIX = ("ttp:", "ttpp:", "tttg:", "ttpr:", "ttt_chunk", "sliding_eval", "ttt_progress", "ttt:batch", "ttt:rank")

# The one table of log markers. ``parse`` is the parser's test on the lowercased cleaned line (it
# files the line under ``RunLog.markers[kind]``; cheap, first 120 characters); ``confirm`` is the
# stricter test a line must also pass before the eval-integrity analysis takes it as evidence of that
# stage (``rules.analysis.logs``), with ``hints``: the lowercase fragments that let the analysis scan
# only the lines that may match in a megabyte log. A kind with no ``parse`` is found by that scan only.
MARKER_CAP = 20


@dataclass(frozen=True)
class Marker:
    parse: re.Pattern[str] | None
    confirm: re.Pattern[str] | None = None
    hints: tuple[str, ...] = ()


MARKERS: dict[str, Marker] = {
    "ngram_pass2": Marker(
        re.compile(r"ngram_pass2|pass 2 done|rescor"),
        re.compile(r"ngram_pass2(?!\s*=)|pass\s*2\b.*rescor|rescor(?:e|ing)\b.*(?:chunk|cache|pass)|two[_-]?pass.*(?:done|bpb)", re.I),
        ("pass2", "pass 2", "rescor", "two_pass", "two-pass", "twopass")),
    "ngram_two_pass": Marker(re.compile(r"two_pass")),
    "ngram": Marker(re.compile(r"^(?:starting n-gram|ngram|n-gram|final_ngram)|ngram_cache|backoff")),
    "ppm_mix": Marker(
        re.compile(r"\[ppm_mix\]|^ppm_"),
        re.compile(r"\[ppm_mix\]|\bppm[_-]?(?:mix\w*|d)\b.*(?:bpb|loss|byte)", re.I),
        ("ppm",)),
    "ngram_prefill_train": Marker(
        None,
        re.compile(r"prefill\w*.*train|train\w*.*prefill|prefill.*fineweb_train|pre-?fill(?:ed|ing)? .*from .*(?:train|shard)", re.I),
        ("prefill", "pre-fill")),
    "prefill": Marker(re.compile(r"prefill")),
    "prequant_ttt": Marker(re.compile(r"prequant_ttt|pre_quant_ttt|post-prequant-ttt|pre-eval ttt")),
    "ttt": Marker(re.compile(r"^(?:\w*ttt|beginning ttt|ttp:|ttpp:|tttg:)")),
    "slot": Marker(re.compile(r"^\w*slot")),
    "etlb": Marker(re.compile(r"etlb")),
    "gptq": Marker(re.compile(r"^gptq")),
    "eval_only": Marker(re.compile(r"eval_only|skipping training")),
    "error": Marker(re.compile(r"^traceback|error:|childfailederror|out of memory")),
}
_MARKERS: list[tuple[str, re.Pattern[str]]] = [(k, m.parse) for k, m in MARKERS.items() if m.parse is not None]


# Cheap pre-filter: every marker pattern contains one of these (lower-case) fragments.
_MARKER_KEYS = ("ngram", "n-gram", "pass", "rescor", "backoff", "ppm", "prefill", "ttt", "ttp", "slot", "etlb", "gptq",
                "eval_only", "skipping", "traceback", "error", "memory")
_MARKER_KEY = re.compile("|".join(map(re.escape, _MARKER_KEYS)))  # one scan per line instead of 17 ``in`` tests


def _f(text: str) -> float:
    """A matched number; absurd digit strings are capped instead of becoming inf (never raises)."""
    return min(float(text), 1e18)


def _num(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


class _RunBuilder:
    """Accumulates one run; ``has_training`` says a header after it starts a new run."""

    def __init__(self, index: int, first_line: int):
        self.run = RunLog(index=index, first_line=first_line, last_line=first_line)
        self.has_training = False
        self.has_eval = False
        self.header_seen: set[str] = set()
        self.last_step_val: EvalLine | None = None
        self.stop_seen = False
        self.last_train_line = 0


def _split_needed(b: _RunBuilder, key: str) -> bool:
    if not (b.has_training or b.has_eval):
        return False
    if key in ("running", "hyperparameters", "code", "step0"):
        return True
    return key in b.header_seen


_CTRL_BYTES = bytes(b for b in range(32) if b < 9 or 13 < b < 32)


def _is_binary(data: bytes) -> bool:
    """Same test as ``auditor.fs`` (NULs or >10 % control bytes; UTF-16 is text), counted in C:
    the corpus has 4,000 logs and a per-byte Python loop cost seconds."""
    sample = data[:8192]
    if not sample:
        return False
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(sample) >= 4 and sample[1::2].count(0) > 0.4 * (len(sample) // 2)):
        return False
    if b"\x00" in sample:
        return True
    ctrl = len(sample) - len(sample.translate(None, _CTRL_BYTES))
    return ctrl > 0.1 * len(sample)


def read_log(path: Path, root: Path, rel: str) -> LogFile:
    lf = LogFile(path=rel)
    try:
        data = read_bytes(path, root)
        if _is_binary(data):
            raise UnreadableFile("binary content, not text")
    except UnreadableFile as exc:
        lf.problems.append(Problem(rel, str(exc)))
        return lf
    lf.sha256 = hashlib.sha256(data).hexdigest()
    try:
        text, _enc, _repairs = decode_text(data)
        lf.text = text  # rules read this, never the file
        parse_log_text(text, lf)
    except Exception as exc:  # a parser bug must not take the audit down; say which file
        lf.problems.append(Problem(rel, f"log could not be fully parsed ({type(exc).__name__}: {exc})"))
    return lf


def parse_log_text(text: str, lf: LogFile | None = None) -> LogFile:
    """Parse decoded log text (newlines normalised) into ``lf`` and return it."""
    lf = lf or LogFile(path="")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lf.n_lines = len(lines)
    cleaned = [clean_line(x) for x in lines]
    runs: list[_RunBuilder] = []
    cur = _RunBuilder(0, 1)
    runs.append(cur)
    in_dump = False
    n = len(cleaned)
    i = 0

    def boundary(key: str, lineno: int) -> None:
        nonlocal cur
        if _split_needed(cur, key):
            cur = _RunBuilder(len(runs), lineno)
            runs.append(cur)
        cur.header_seen.add(key)

    while i < n:
        s = cleaned[i]
        lineno = i + 1
        if not s:
            i += 1
            continue
        c0 = s[0]
        # --- embedded source -------------------------------------------------------------
        if c0 == "[" and s.startswith("[pgolf-corpus"):
            m = CORPUS_MARKER.match(s)
            if m:
                boundary("code", lineno)
                cur.run.embedded_code.append(EmbeddedCode(sha256=m.group(3), n_lines=int(m.group(1)), line=lineno, elided=True))
                i += 1
                continue
        if c0 in "\"'idfce" and _CODE_START.match(s) and lines[i] == s:
            end, pyish = _code_block_end(cleaned, i)
            if end - i >= _MIN_CODE_LINES and pyish >= 0.5 * (end - i):
                block = lines[i:end]
                boundary("code", lineno)
                sha = hashlib.sha256("\n".join(block).encode("utf-8", "surrogatepass")).hexdigest()
                cur.run.embedded_code.append(EmbeddedCode(sha256=sha, n_lines=len(block), line=lineno))
                i = end
                continue
        run = cur.run
        # --- hyperparameter dump ---------------------------------------------------------
        if in_dump:
            if c0 == " ":
                m = _DUMP.match(s)
                if m:
                    run.hyperparameters[m.group(1)] = m.group(2).strip()
                    i += 1
                    continue
            in_dump = False
        if c0 == "H" and s.startswith("Hyperparameters:"):
            boundary("hyperparameters", lineno)
            in_dump = True
            i += 1
            continue
        if c0 == "R" and s.startswith("Running P"):
            boundary("running", lineno)
            i += 1
            continue
        # --- training progress -----------------------------------------------------------
        if "train_loss" in s:
            m = _TRAIN.match(s)
            if m:
                step = int(m.group(1))
                if step == 0 and cur.has_training and (run.steps or 0) > 0:
                    boundary("step0", lineno)
                    run = cur.run
                cur.has_training = True
                cur.last_train_line = lineno
                run.steps = step
                run.iterations = run.iterations or int(m.group(2))
                rest = m.group(4)
                tm = _TRAIN_TIME_MS.search(rest)
                if tm:
                    run.train_time_ms = _f(tm.group(1)) if not cur.stop_seen else run.train_time_ms
                else:
                    tm = _TRAIN_TIME_MIN.search(rest)
                    if tm and not cur.stop_seen:
                        run.train_time_ms = _f(tm.group(1)) * 60000.0
                sa = _STEP_AVG.search(rest)
                if sa:
                    run.step_avg_ms = _f(sa.group(1))
                i += 1
                continue
        if "stopping_early" in s:
            m = _STOP.search(s)
            if m:
                ms = _f(m.group(1))
                run.stop = SizeLine(value=int(round(ms)), line=lineno, text=lines[i], tag="train_time_ms")
                run.train_time_ms = ms
                if m.group(2):
                    run.steps = int(m.group(2))
                if m.group(3):
                    run.iterations = int(m.group(3))
            else:
                m2 = _STOP_STEP_ONLY.search(s)
                if m2:
                    run.steps = int(m2.group(1))
                run.stop = run.stop or SizeLine(value=-1, line=lineno, text=lines[i], tag="no_time")
            cur.stop_seen = True
            cur.has_training = True
            i += 1
            continue
        # --- evaluation lines ------------------------------------------------------------
        if "bpb" in s:
            if _handle_eval(cur, s, lines[i], lineno, boundary):
                i += 1
                continue
        # --- sizes -----------------------------------------------------------------------
        if "bytes" in s:
            if _handle_size(run, s, lines[i], lineno):
                i += 1
                continue
        # --- header / configuration ------------------------------------------------------
        if _handle_header(cur, s, lineno, boundary):
            i += 1
            continue
        _handle_marker(cur.run, s, lines[i], lineno)
        i += 1

    out = []
    for b in runs:
        r = b.run
        if not (b.has_training or b.has_eval or r.embedded_code or r.hyperparameters or r.seed is not None):
            continue
        _finish_run(b)
        out.append(r)
    # the last line of a run is where the next one starts
    for a, b2 in zip(out, out[1:]):
        a.last_line = b2.first_line - 1
    if out:
        out[-1].last_line = max(n, out[-1].first_line)
    for k, r in enumerate(out):
        r.index = k
    lf.runs = out
    return lf


def _handle_eval(cur: _RunBuilder, s: str, raw: str, lineno: int, boundary) -> bool:
    run = cur.run
    # training-time validation: "step:N/M val_loss:F val_bpb:F ..." or late "N/M val_loss: F val_bpb: F"
    if s[0].isdigit() or s.startswith(("step", "Step")):
        m = _STEP_VAL.match(s)
        if m:
            step = int(m.group(1))
            if step == 0 and cur.has_training and (run.steps or 0) > 0:
                boundary("step0", lineno)
                run = cur.run
            cur.has_training = True
            if m.group(2):
                run.iterations = run.iterations or int(m.group(2))
            run.steps = max(run.steps or 0, step) if not cur.stop_seen else run.steps
            tm = _TRAIN_TIME_MS.search(s)
            if tm and not cur.stop_seen:
                run.train_time_ms = _f(tm.group(1))
            ev = EvalLine(label=f"step:{step}", val_bpb=_num(m.group(4)), val_loss=_num(m.group(3)), line=lineno,
                          text=raw, after_stop=cur.stop_seen)
            cur.last_step_val = ev
            run.evals.append(ev)
            return True
    if s.startswith(_PROGRESS_PREFIX):
        _handle_marker(run, s, raw, lineno)
        return True
    m = _EVAL.match(s)
    if m:
        label = _label(m.group("label"))
        rest = m.group("rest")
        loss, bpb = _num(m.group("loss")), _num(m.group("bpb"))
    else:
        m = _EVAL_BPB_ONLY.match(s)
        kv = None if m else _EVAL_KV.match(s)
        if kv is not None and not kv.group("label").startswith("val_bpb"):
            toks = [t for t in _BPB_TOKEN.findall(" " + kv.group("rest")) if not _NOT_SCORE_KEY.search(t[0])]
            if not toks:
                return False
            label, rest = _label(kv.group("label")), kv.group("rest")
            losses = [t for t in _LOSS_TOKEN.findall(" " + rest) if not _NOT_SCORE_KEY.search(t[0])]
            loss, bpb = (_num(losses[-1][1]) if losses else None), _num(toks[-1][1])
        else:
            if not m or m.group("label").startswith("val_bpb"):
                m = _EVAL_SUMMARY.match(s)
                if not m:
                    return False
            label = _label(m.group("label") or "val_bpb")
            rest = m.group("rest")
            loss, bpb = None, _num(m.group("bpb"))
    if bpb is None:
        return False
    et = _EVAL_TIME.search(rest)
    eval_ms = _f(et.group(1)) if et else None
    if eval_ms is None:
        el = _ELAPSED.search(rest)
        eval_ms = _f(el.group(1)) * 1000.0 if el else None
    run.evals.append(EvalLine(label=label, val_bpb=bpb, val_loss=loss, line=lineno, text=raw, eval_time_ms=eval_ms))
    cur.has_eval = True
    _handle_marker(run, s, raw, lineno)
    return True


_LABEL_TAIL = re.compile(r"(?:\s+[\w\-]+[:=]\S*)+$")


def _label(text: str) -> str:
    """The score's label: ``final_sliding_window_eval_exact stride:64`` → ``final_sliding_window_eval_exact``."""
    label = text.strip().rstrip(":,|").strip()
    if label.lower().startswith("final bpb:"):
        label = label[len("final bpb:"):].strip()
    if " " in label:
        label = _LABEL_TAIL.sub("", label) or label
    return label or "(unlabelled)"


def _handle_size(run: RunLog, s: str, raw: str, lineno: int) -> bool:
    c0 = s[0]
    if c0 == "C":
        m = _CODE_SIZE.match(s)
        if m:
            kind, val = m.group(1), int(m.group(2))
            if kind == "compressed":
                run.code_bytes_compressed = SizeLine(val, lineno, raw, "compressed")
            else:
                run.code_bytes = SizeLine(val, lineno, raw, kind)
            return True
    elif c0 == "S":
        m = _MODEL_SIZE.match(s)
        if m:
            run.model_bytes = SizeLine(int(m.group(2)), lineno, raw, m.group(1).strip())
            return True
    elif c0 == "T":
        m = _TOTAL_SIZE.match(s)
        if m:
            run.total_bytes = SizeLine(int(m.group(2)), lineno, raw, m.group(1).strip())
            return True
    else:
        m = _ARTIFACT.match(s)
        if m and (run.total_bytes is None or run.total_bytes.tag == "artifact"):
            run.total_bytes = SizeLine(int(m.group(1).replace(",", "")), lineno, raw, "artifact")
            return True
    return False


def _handle_header(cur: _RunBuilder, s: str, lineno: int, boundary) -> bool:
    c0 = s[0]
    if c0 in "sS " and ("seed" in s or "Seed" in s):
        m = _SEED.match(s)
        if m:
            boundary("seed", lineno)
            cur.run.seed = int(m.group(1))
            return True
    elif c0 == "S" and s.startswith("SEED="):
        m = re.match(r"SEED=(\d+)", s)
        if m:
            boundary("seed", lineno)
            cur.run.seed = int(m.group(1))
            return True
    if c0 == "w" and s.startswith("world_size"):
        m = _WORLD.match(s)
        if m:
            boundary("world_size", lineno)
            cur.run.world_size = int(m.group(1))
            if m.group(2):
                cur.run.grad_accum_steps = int(m.group(2))
            return True
    if "max_wallclock_seconds" in s or ("iterations:" in s and "train_batch_tokens" in s):
        boundary("budget", lineno)
        m = _MAXWALL.search(s)
        if m:
            cur.run.max_wallclock_seconds = _f(m.group(1))
        m = _ITERS.search(s)
        if m:
            cur.run.iterations = int(m.group(1))
        return True
    if c0 == "g" and s.startswith("gptq:reserving"):
        m = _GPTQ.match(s)
        if m:
            v = _f(m.group(1))
            cur.run.gptq_reserve_s = v / 1000.0 if m.group(2) == "ms" else v
        _handle_marker(cur.run, s, s, lineno)
        return True
    if c0 == "v":
        if s.startswith("val_bpb:enabled"):
            m = _TOKENIZER.search(s)
            if m:
                boundary("tokenizer", lineno)
                cur.run.tokenizer_path = m.group(1)
            return True
        if s.startswith(("val_loader:", "val_tokens:")):
            m = _VAL_TOKENS.match(s)
            if m:
                boundary("val_tokens", lineno)
                cur.run.val_tokens = int(m.group(1))
            return True
    if c0 == "t" and (s.startswith("train_loader:") or s.startswith("train_shards:")):
        m = _TRAIN_SHARDS.search(s)
        if m:
            boundary("train_shards", lineno)
            cur.run.train_shards = int(m.group(1))
        return True
    if c0 == "m" and s.startswith("model_params:"):
        boundary("model_params", lineno)
        return True
    if c0 == "t" and s.startswith("total_eval_time"):
        m = _TOTAL_EVAL.match(s)
        if m:
            cur.run.total_eval_time_s = _f(m.group(1))
            return True
    return False


def _handle_marker(run: RunLog, s: str, raw: str, lineno: int) -> None:
    if s.startswith(_PROGRESS_PREFIX):  # the bulk of TTT logs: 170k progress lines, one kind
        got = run.markers.setdefault("ttt", [])
        if len(got) < MARKER_CAP:
            got.append((lineno, raw))
        return
    low = s[:120].lower()
    if not _MARKER_KEY.search(low):
        return
    for kind, rx in _MARKERS:
        if rx.search(low):
            got = run.markers.setdefault(kind, [])
            if len(got) < MARKER_CAP:
                got.append((lineno, raw))


def _fill_from_dump(run: RunLog) -> None:
    hp = run.hyperparameters
    if not hp:
        return

    def geti(key: str) -> int | None:
        v = hp.get(key)
        try:
            return int(min(float(v), 1e18)) if v not in (None, "") else None
        except (ValueError, OverflowError):
            return None

    if run.seed is None:
        run.seed = geti("seed")
    if run.world_size is None:
        run.world_size = geti("world_size")
    if run.grad_accum_steps is None:
        run.grad_accum_steps = geti("grad_accum_steps")
    if run.iterations is None:
        run.iterations = geti("iterations")
    if run.max_wallclock_seconds is None and hp.get("max_wallclock_seconds"):
        run.max_wallclock_seconds = _num(hp["max_wallclock_seconds"])
    if run.tokenizer_path is None and hp.get("tokenizer_path"):
        run.tokenizer_path = hp["tokenizer_path"]
    if hp.get("gptq_reserve_seconds"):  # the dump is more precise than the rounded "gptq:reserving 0s" line
        run.gptq_reserve_s = _num(hp["gptq_reserve_seconds"])


def final_line(text: str) -> EvalLine | None:
    """The final score line of a log's text, as the audit reads it (records.md §3.4, its last run)."""
    run = parse_log_text(text).last_run
    return run.final if run is not None else None


def is_scoring_label(label: str) -> bool:
    """False for the diagnostic/pre-quant/progress labels §3.4 step 2 drops."""
    return not _NOT_FINAL.search(label) and not label.startswith("step:")


def pick_final(evals: list[EvalLine]) -> EvalLine | None:
    """records.md §3.4 steps 2–3: the last scoring eval line after the stop, in its ``_exact`` twin."""
    cands = [e for e in evals if e.after_stop and e.val_bpb is not None and is_scoring_label(e.label)]
    if not cands:
        return None
    last = cands[-1]
    if not last.label.endswith("_exact"):
        twin = last.label + "_exact"
        for e in reversed(cands):
            if e.label == twin and abs((e.val_bpb or 0) - (last.val_bpb or 0)) < 6e-4:
                return e
    return last


def _finish_run(b: _RunBuilder) -> None:
    run = b.run
    _fill_from_dump(run)
    # §3.4: only lines after the training loop count; without a stop line (the run ended on
    # `iterations`) the loop ends at the last training step line.
    end_of_training = run.stop.line if run.stop is not None else b.last_train_line
    for e in run.evals:
        e.after_stop = e.line > end_of_training and not e.label.startswith("step:")
    run.final = pick_final(run.evals)
    run.complete = run.final is not None
    if run.final is None and b.last_step_val is not None:
        # no post-training eval: the last training-time validation is the only score the run shows
        run.final = b.last_step_val
