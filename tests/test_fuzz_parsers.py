"""Property tests for the submission.json and train-log readers: any bytes in → a result or a clean,
one-line Problem out. Never an exception, never a crash caught and papered over by the reader's
last-resort handler (those messages name an internal exception type, and count as failures here).

2,000 examples per parser (the issue's floor), each a small file, so each test stays a few seconds.
"""
from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from auditor.evidence.logs import read_log
from auditor.evidence.submission import read_claims
from auditor.model import Claims, LogFile, RecordResult, Report
from auditor.report import render

FUZZ = settings(max_examples=2000, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- file-shaped mutations: the noise real files carry (records.md §2.3, §3.1) ---------------------

def _encodings(text: str) -> st.SearchStrategy[bytes]:
    return st.sampled_from([
        text.encode("utf-8", "surrogatepass"),
        b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass"),
        text.replace("\n", "\r\n").encode("utf-8", "surrogatepass"),
        text.encode("utf-16", "surrogatepass"),  # PowerShell
        text.encode("latin-1", "replace"),
        text.replace("\n", "\r").encode("utf-8", "surrogatepass"),
    ])


@st.composite
def mutated(draw, base: st.SearchStrategy[str]) -> bytes:
    data = draw(base.flatmap(_encodings))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["cut", "insert", "flip", "dup", "none"]))
        if not data or op == "none":
            continue
        i = draw(st.integers(0, len(data)))
        if op == "cut":
            data = data[:i]
        elif op == "insert":
            data = data[:i] + draw(st.binary(max_size=16)) + data[i:]
        elif op == "flip" and i < len(data):
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
        elif op == "dup":
            j = draw(st.integers(0, len(data)))
            data = data[:i] + data[min(i, j):max(i, j)] + data[i:]
    return data


# --- submission.json ---------------------------------------------------------------------------------

KEYS = ["val_bpb", "val_loss", "bytes_total", "bytes_code", "seeds", "seed_results", "mean_val_bpb", "val_bpb_std",
        "author", "authors", "github_id", "name", "date", "track", "blurb", "results", "3seed_mean_val_bpb",
        "artifact_bytes", "seed", "val_bpb_mean", "per_seed", "hardware", "bytes_model"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["1.1690", "1.2930 (1xH100) / 5.0 (best)", "pending", "TBD", "N/A", "1e309", "-0", "15.9MB",
                     "<3-seed mean -- fill after runs>", "1,234,567", "0x10", "NaN", "Infinity"]),
)
json_values = st.recursive(scalars, lambda kids: st.one_of(
    st.lists(kids, max_size=5), st.dictionaries(st.one_of(st.sampled_from(KEYS + ["1337", "42", "seed_7"]), st.text(max_size=8)), kids, max_size=5)),
    max_leaves=12)
claims_objects = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=10)


def _dump(obj) -> str:
    try:
        return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=True)
    except (ValueError, TypeError):
        return "{}"


claims_text = st.one_of(
    claims_objects.map(_dump),
    claims_objects.map(lambda o: "```json\n" + _dump(o) + "\n```\n"),  # a Markdown fence around it
    claims_objects.map(lambda o: _dump(o).replace(",\n", "\n", 1)),  # a missing comma
    claims_objects.map(lambda o: _dump(o).replace("\n}", ",\n}")),  # a trailing comma
    st.tuples(claims_objects, claims_objects).map(lambda t: _dump(t[0]) + _dump(t[1])),  # two objects
    claims_objects.map(lambda o: "cat > submission.json <<EOF\n" + _dump(o) + "\nEOF\n"),  # a heredoc
    claims_objects.map(lambda o: "json" + _dump(o)),
    json_values.map(_dump),  # any JSON value, not only objects
    st.text(max_size=300),
)
claims_bytes = st.one_of(mutated(claims_text), st.binary(max_size=400))


def _one_line_problems(problems, rel: str) -> None:
    for p in problems:
        assert isinstance(p.file, str) and isinstance(p.message, str) and p.message
        assert "\n" not in p.message, p.message
        assert "Traceback" not in p.message


def _renders(**record) -> None:
    """Whatever the reader returns must also render as valid JSON."""
    doc = json.loads(render(Report(records=[RecordResult(path="x", **record)]), "json"))
    assert doc["records"][0]["path"] == "x"


class _Scratch:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="pgolf-fuzz-"))
        self.n = 0

    def file(self, name: str, data: bytes) -> Path:
        self.n += 1
        p = self.dir / f"{self.n}" / name
        p.parent.mkdir()
        p.write_bytes(data)
        return p


_scratch = _Scratch()


@FUZZ
@given(claims_bytes)
@example(b'{\n  "val_bpb": 0\n}')  # found by this test: an integer claim
@example(b'\xff\xfe{\x00"\x00v\x00')  # UTF-16, cut mid-key
def test_read_claims_never_raises(data: bytes):
    path = _scratch.file("submission.json", data)
    claims = read_claims(path, path.parent, "submission.json")
    assert isinstance(claims, Claims)
    _one_line_problems(claims.problems, "submission.json")
    assert not any(p.message.startswith("could not read the claims (") for p in claims.problems), claims.problems
    for v in (claims.val_bpb, claims.val_loss, claims.val_bpb_std, claims.bytes_total, claims.bytes_code):
        assert v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)), v
    assert all(isinstance(s, int) for s in claims.seeds)
    _renders(claims=claims)


# --- train logs --------------------------------------------------------------------------------------

num = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(lambda f: f"{f:.8f}" if math.isfinite(f) else str(f)),
                st.integers(-10**12, 10**12).map(str), st.sampled_from(["nan", "inf", "-0.0", "1e400", "", "1.2.3", "９"]))
log_lines = st.one_of(
    st.builds("step:{}/{} train_loss:{} train_time:{}ms step_avg:{}ms".format, num, num, num, num, num),
    st.builds("step:{}/{} val_loss:{} val_bpb:{} train_time:{}ms step_avg:{}ms".format, num, num, num, num, num, num),
    st.builds("final_int8_zlib_roundtrip_exact val_loss:{} val_bpb:{}".format, num, num),
    st.builds("final_sliding_window_exact val_loss:{} val_bpb:{} eval_time:{}ms".format, num, num, num),
    st.builds("{} val_loss:{} val_bpb:{}".format, st.text(max_size=20), num, num),
    st.builds("stopping_early: wallclock_cap train_time:{}ms step:{}/{}".format, num, num, num),
    st.builds("Serialized model int8+zlib: {} bytes".format, num),
    st.builds("Total submission size {}: {} bytes".format, st.sampled_from(["int8+zlib", "int6+lzma", "", "x:y"]), num),
    st.builds("Code size: {} bytes".format, num),
    st.builds("seed:{}".format, num), st.builds("world_size:{} grad_accum_steps:{}".format, num, num),
    st.builds("  {}: {}".format, st.sampled_from(["seed", "iterations", "max_wallclock_seconds", "tokenizer_path", "x"]), num),
    st.sampled_from(["=" * 100, "Hyperparameters:", "Source code:", "Running Python 3.12.0", "Running PyTorch 2.8.0",
                     "import torch", "def main():", "    return 1", '"""', "class GPT(nn.Module):",
                     "[pgolf-corpus: embedded source code elided: 120 lines, 4000 bytes, sha256=" + "0" * 64 + "]",
                     "W0318 14:37:59.159000 871689 site-packages/torch/distributed/run.py:852] Setting OMP_NUM_THREADS",
                     "Traceback (most recent call last):", "torch.OutOfMemoryError: CUDA out of memory",
                     "[rank0]: ChildFailedError", "exec(lzma.decompress(base64.b85decode('abc')))", "\x1b[32mok\x1b[0m"]),
    st.builds("[default{}]:{}".format, st.integers(0, 7), st.just("step:1/2 val_loss:2 val_bpb:1.2")),
    st.builds("{} {}".format, st.sampled_from(["1776142348.135", "[2026-03-25 11:17:32] INFO:"]), st.just("step:5/9 val_bpb:1.1")),
    st.text(max_size=60),
)
log_text = st.lists(log_lines, max_size=40).map("\n".join)
log_bytes = st.one_of(mutated(log_text), st.binary(max_size=400))


@FUZZ
@given(log_bytes)
# found by this test: "1.2.3" crashed the stop-line handler (ValueError), fixed in auditor/evidence/logs.py
@example(b"step:0/0 train_loss:0 train_time:0ms step_avg:0ms\nfinal_int8_zlib_roundtrip_exact val_loss:0 val_bpb:0\n"
         b"stopping_early: wallclock_cap train_time:1.2.3ms step:0/0")
def test_read_log_never_raises(data: bytes):
    path = _scratch.file("train_seed1.log", data)
    lf = read_log(path, path.parent, "train_seed1.log")
    assert isinstance(lf, LogFile)
    _one_line_problems(lf.problems, "train_seed1.log")
    assert not any(p.message.startswith("log could not be fully parsed (") for p in lf.problems), lf.problems
    for run in lf.runs:
        assert 1 <= run.first_line <= max(run.last_line, 1)
        for ev in run.evals:
            assert 1 <= ev.line <= max(lf.n_lines, 1), (ev.line, lf.n_lines)
            assert ev.val_bpb is None or (isinstance(ev.val_bpb, (int, float)) and not isinstance(ev.val_bpb, bool))
    _renders()
