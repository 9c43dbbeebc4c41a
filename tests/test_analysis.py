"""rules.analysis: the shared index, configuration, reachability, call graph and taint."""
from __future__ import annotations

import textwrap

import pytest

from auditor.context import AuditContext, AuditOptions
from auditor.discover import discover
from auditor.evidence import read_evidence
from rules import _eval_cases as cases
from rules.analysis import analyse, file_facts, taint
from rules.analysis.index import _parse_skipping
from tests.helpers import write_folder


def facts_for(tmp_path, files):
    folder = write_folder(tmp_path, files if isinstance(files, dict) else {"train_gpt.py": files})
    ev = read_evidence(discover([folder]).folders[0])
    return analyse(AuditContext(evidence=ev, options=AuditOptions()))


def line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.split("\n"), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_parse_cache_shares_identical_files():
    src = "import os\nX = os.environ.get('X', '1')\n"
    a = file_facts("a/train_gpt.py", src)
    b = file_facts("b/train_gpt.py", src)
    assert a.tree is b.tree, "identical texts must share one parse"
    assert (a.path, b.path) == ("a/train_gpt.py", "b/train_gpt.py")
    assert file_facts("c.py", src + "\n").tree is not a.tree


def test_env_defaults_and_fields():
    ff = file_facts("t.py", textwrap.dedent('''
        import os
        class Hyperparameters:
            ngram_eval = bool(int(os.environ.get("NGRAM_EVAL", "0")))
        TWO_PASS = int(os.getenv("NGRAM_TWO_PASS", 1))
        def f():
            if os.environ.get("DEBUG_X", "0") == "1":
                pass
        '''))
    assert ff.env["NGRAM_EVAL"].default == "0" and ff.env["NGRAM_EVAL"].attr == "ngram_eval"
    assert ff.fields["ngram_eval"].line == 4
    assert ff.env["NGRAM_TWO_PASS"].attr == "TWO_PASS" and ff.env["NGRAM_TWO_PASS"].default == 1
    assert ff.env["DEBUG_X"].default == "0"
    assert "Hyperparameters" in ff.classes and "f" in ff.functions


def test_run_config_sources(tmp_path):
    f = facts_for(tmp_path, cases.ILLEGAL_NGRAM_README_ON)
    assert f.config.field_value("ngram_eval") == (True, {"readme"})
    f2 = facts_for(tmp_path / "b", cases.DEAD_NGRAM)
    assert f2.config.field_value("ngram_eval") == (False, {"default"})


def test_reachability_follows_guards_and_evidence(tmp_path):
    dead = facts_for(tmp_path / "dead", cases.DEAD_NGRAM)
    fn = dead.functions["NgramCache.lookup"]
    assert dead.function_reach(fn).state == "unreachable"  # default 0, the logs show no n-gram stage
    no_logs = facts_for(tmp_path / "nolog", {"train_gpt.py": cases.DEAD_NGRAM["train_gpt.py"]})
    assert no_logs.function_reach(no_logs.functions["NgramCache.lookup"]).state == "non-default"
    on = facts_for(tmp_path / "on", cases.ILLEGAL_NGRAM_README_ON)
    assert on.function_reach(on.functions["NgramCache.lookup"]).state is None
    # a log line that only the guarded branch prints proves the branch ran
    ran = dict(cases.DEAD_NGRAM)
    ran["train_gpt.py"] = ran["train_gpt.py"].replace(
        "if args.ngram_eval:\n        eval_val_ngram(model, val_tokens)",
        'if args.ngram_eval:\n        print("ngram cache enabled: 65536 buckets")\n        eval_val_ngram(model, val_tokens)')
    ran["train_seed1.log"] += "ngram cache enabled: 65536 buckets\n"
    f = facts_for(tmp_path / "ran", ran)
    assert f.function_reach(f.functions["NgramCache.lookup"]).state is None


def test_call_graph_and_reachable_from(tmp_path):
    f = facts_for(tmp_path, cases.ILLEGAL_NGRAM)
    names = {fn.qualname for fn in f.reachable_from("eval_val_ngram")}
    assert {"NgramCache.lookup", "NgramCache.update", "_hash_full", "_hash_ctx", "NgramCache.__init__"} <= names
    assert "main" not in names
    assert "eval_val_ngram" in f.call_graph()["main"]


def test_taint_finds_target_hashed_into_a_read_key_through_helpers(tmp_path):
    f = facts_for(tmp_path, cases.ILLEGAL_NGRAM)
    tf = taint(f)
    reads = [kr for kr in tf.key_reads.values() if kr.fn.qualname == "NgramCache.lookup"]
    assert len(reads) == 1, "only the full-key read; the context read and the np.add.at updates are not key reads"
    src = cases.ILLEGAL_NGRAM
    want = [f"eval_val_ngram:{line_of(src, 'p_ng = cache.lookup')}",
            f"NgramCache.lookup:{line_of(src, 'f = self.full_counts[')}",
            f"_hash_full:{line_of(src, 'h ^= targets * 999983')}"]
    sink_paths = {p for s in tf.log_sinks.values() for k, p in s.labels if k == "K"}
    assert tuple(want) in sink_paths


def test_legal_shapes_carry_no_key_reads(tmp_path):
    for i, src in enumerate([cases.LEGAL_NGRAM, cases.BIGRAM_INPUT_HASH, cases.TILT_WITH_Z, cases.SLIDING_WINDOW]):
        tf = taint(facts_for(tmp_path / str(i), src))
        assert not tf.key_reads, (i, [(k.fn.qualname, k.line) for k in tf.key_reads.values()])


def test_wrapped_code_is_analysed_and_labelled(tmp_path):
    f = facts_for(tmp_path, cases.wrapped(cases.ILLEGAL_NGRAM))
    assert "NgramCache.lookup" in f.functions
    assert "decoded" in f.notes["train_gpt.py"]


def test_newer_python_syntax_is_skipped_line_by_line():
    src = "def f(d):\n    x = 1\n    print(f'{d['k']}')\n    return x\n"
    tree, skipped = _parse_skipping(src)
    import sys
    if sys.version_info >= (3, 12):
        pytest.skip("this Python parses PEP 701 f-strings")
    assert tree is not None and skipped == [3]
    assert file_facts("n.py", src).functions["f"].line == 1


def test_log_lines_of_embedded_source_are_not_evidence(tmp_path):
    files = dict(cases.DEAD_NGRAM)
    files["train_gpt.py"] = files["train_gpt.py"].replace(
        "if args.ngram_eval:\n        eval_val_ngram(model, val_tokens)",
        'if args.ngram_eval:\n        print("ngram cache enabled: 65536 buckets")\n        eval_val_ngram(model, val_tokens)')
    # the log embeds the script (as many real logs do) but never printed the n-gram line
    files["train_seed1.log"] = files["train_seed1.log"] + '        print("ngram cache enabled: 65536 buckets")\n' \
        + 'ngram_pass2 = False\n        log_fn(f"ngram_pass2: rescoring first {n} chunks")\n'
    f = facts_for(tmp_path, files)
    assert f.function_reach(f.functions["NgramCache.lookup"]).state == "unreachable"
    assert not f.logs.markers.get("ngram_pass2")
