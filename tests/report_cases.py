"""Reports for the renderer tests: real ones from the pipeline over folders we write, and
hand-built ones with the content real submissions throw at a report (unicode, newlines, markup,
huge evidence, NaN, undecodable bytes, hundreds of folders)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from auditor.context import AuditOptions
from auditor.discover import discover
from auditor.model import (Claims, Finding, Measured, Problem, RecordResult, Report, SeedMeasure, Severity, Stats,
                           VERDICT_FAIL, VERDICT_PASS, VERDICT_REVIEW)
from auditor.pipeline import build_report, tool_info
from tests.helpers import write_folder

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "records"
ONLY = {"SUBMISSION-FILES"}  # the lead's rule: stable while the other rules are being written


def log(seed: int, bpb: float, total: int = 15_863_489, train_ms: int = 599_500) -> str:
    """A train log in the baseline's format (our own text, not a copy of a submission's)."""
    return (
        f"seed:{seed}\nworld_size:8\n"
        f"step:1000/20000 val_loss:2.1000 val_bpb:1.2500 train_time:300000ms step_avg:300.00ms\n"
        f"step:2000/20000 val_loss:2.0700 val_bpb:{bpb:.4f} train_time:{train_ms}ms step_avg:299.75ms\n"
        f"stopping_early: wallclock_cap train_time:{train_ms}ms step:2000/20000\n"
        f"Serialized model int8+zlib: {total - 47642} bytes\nCode size: 47642 bytes\n"
        f"Total submission size int8+zlib: {total} bytes\n"
        f"final_int8_zlib_roundtrip_exact val_loss:{bpb * 1.6906:.8f} val_bpb:{bpb:.8f}\n"
    )


def clean_files(bpbs=(1.2243, 1.2245, 1.2244)) -> dict[str, str]:
    files = {
        "README.md": "# A tiny record\n",
        "submission.json": json.dumps({"author": "a", "github_id": "a", "val_bpb": round(sum(bpbs) / len(bpbs), 4),
                                       "bytes_total": 15_863_489, "bytes_code": 47_642}) + "\n",
        "train_gpt.py": "print('hello')\n",
    }
    for i, b in enumerate(bpbs, 1):
        files[f"train_seed{i}.log"] = log(i, b)
    return files


def write_tree(root: Path) -> dict[str, Path]:
    """Three folders: clean (pass), one seed log (needs review), no train_gpt.py (fail)."""
    clean = write_folder(root, clean_files(), name="2026-01-01_Clean")
    one = clean_files((1.2244,))
    review = write_folder(root, one, name="2026-01-02_One Seed")  # a space, as real folders have
    broken = {k: v for k, v in clean_files().items() if k != "train_gpt.py"}
    broken["submission.json"] = '{"val_bpb": 1.2244, '  # truncated JSON: an unreadable file
    fail = write_folder(root, broken, name="2026-01-03_No#Code")
    return {"pass": clean, "needs-review": review, "fail": fail}


def pipeline_report(root: Path, paths: list[Path] | None = None, only=ONLY) -> Report:
    disc = discover(paths or [root / "records"], cwd=root)
    return build_report(disc, AuditOptions(only_rules=set(only) if only else None), root=root)


HUGE = 20_000


def odd_report(n_extra_folders: int = 0) -> Report:
    """Everything a renderer can trip on, in one report."""
    nasty = "line one\nline two\r\n100% sure: a, b :: c | d `x` [red]markup[/] <script>alert(1)</script> @cocohearts </details> ```"
    findings = [
        Finding("NGRAM-TARGET-IN-KEY", Severity.ERROR, "train_gpt.py", 412, nasty,
                evidence=["    key = (ctx * P) ^ (tgt * Q)  # ünïcödé ✓ 字", "```", "</details>", "\ttab\there"],
                ruling="https://github.com/openai/parameter-golf/pull/779", fix="Hash the context only.", code="PG101",
                path=["eval_val_ngram:880", "batch_lookup:412"], reachability="reachable: NGRAM_EVAL=1 in the log",
                note="in the code decoded from the lzma wrapper"),
        Finding("REPORT-CONSISTENCY", Severity.ERROR, "logs/train seed,1.log", 7, "claimed 0.2841 but the log says 1.1278",
                evidence=[f"step:{i} val_bpb:1.{i:04d}" for i in range(HUGE)], ruling="", fix=""),
        Finding("TIME-TRAIN-600", Severity.WARNING, "", None, "stopped at 600,106 ms", evidence=["stopping_early: train_time:600106ms"]),
        Finding("SUBMISSION-FILES", Severity.INFO, "README.md", 0, "line 0 is not a line", evidence=[]),
        Finding("STATS-SEEDS", Severity.ERROR, "submission.json", 3, "waived one", evidence=["\"seeds\": [1]"],
                waived="reviewed by the maintainers: three seeds in PR #1868"),
        Finding("TOKENIZER-BPB-ACCOUNTING", Severity.WARNING, "/opt/tokenizers/tok.model", None, "custom tokenizer", evidence=[]),
        Finding("UNKNOWN-RULE", Severity.WARNING, "bad\udcffname.log", 2, "undecodable \udcff byte", evidence=["\udcfe\udcff"]),
    ]
    rec = RecordResult(
        path="records/track_10min_16mb/2026-03-26 Ünïcode #folder%20",
        track="10min",
        verdict=VERDICT_FAIL,
        claims=Claims(file="submission.json", val_bpb=0.2841, bytes_total=15_924_715, bytes_code=93_397, seeds=[1337, 42, 2024]),
        measured=Measured(val_bpb=float("nan"), bytes_total=16_054_963, bytes_source="logged", seeds=[
            SeedMeasure(1337, 0.28411, 0.4796, "final_int8_zlib_roundtrip_exact", 600_055.0, 170_000.0, 16_054_963, 93_397, "train_seed1337.log", 8),
            SeedMeasure(42, float("inf"), None, None, None, None, None, None, "train_seed42.log"),
            SeedMeasure(None, 0.2840, None, "legal_ttt", 600_106.0, None, 16_059_704, None, "train_seed2024.log"),
        ], extra={"odd": {1, 2}, "path": Path("x/y"), "sev": Severity.ERROR}),
        stats=Stats(n_seeds=3, mean_bpb=0.2841, std_bpb=0.0001, against="records/prev", delta_nats=0.012, p_readme=0.004, p_practice=0.18,
                    extra={"nan": float("nan")}),
        findings=findings,
        errors=[Problem("submission.json", "invalid JSON: Expecting ',' delimiter: line 1 column 20\nsecond line"),
                Problem("train_seed42.log", "binary file (NUL bytes); skipped")],
    )
    records = [rec]
    for i in range(n_extra_folders):
        verdict = (VERDICT_FAIL, VERDICT_REVIEW, VERDICT_PASS)[i % 3]
        sev = {VERDICT_FAIL: Severity.ERROR, VERDICT_REVIEW: Severity.WARNING, VERDICT_PASS: None}[verdict]
        fs = [Finding("ARTIFACT-16MB", sev, "train.log", 90 + i, f"total {16_000_001 + i:,} bytes > 16,000,000",
                      evidence=[f"Total submission size int8+zlib: {16_000_001 + i} bytes"] * 30)] if sev else []
        records.append(RecordResult(path=f"records/track_10min_16mb/2026-04-{i:03d}_Batch", track="10min", verdict=verdict,
                                    claims=Claims(file="submission.json", val_bpb=1.1 + i / 1000), findings=fs))
    return Report(records=records, errors=[Problem("records/loose.txt", "file loose in records/, outside any record folder")],
                  tool=tool_info(), root="/tmp/checkout")


# GitHub workflow command: ::kind [k=v(,k=v)*]::message — no raw CR/LF, and property values free of ':' and ','.
COMMAND_RE = re.compile(r"^::(error|warning|notice)(?: ([a-zA-Z]+=[^,:\r\n]*(?:,[a-zA-Z]+=[^,:\r\n]*)*))?::([^\r\n]*)$")


_UNESCAPE = {"25": "%", "0D": "\r", "0A": "\n", "3A": ":", "2C": ","}


def unescape(s: str) -> str:
    return re.sub(r"%(25|0D|0A|3A|2C)", lambda m: _UNESCAPE[m.group(1)], s)
