"""The submission.json reader on the malformed and misleading forms of records.md §2.3."""
from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from auditor.evidence.submission import parse_claims_text, printed_decimals, read_claims
from rules.report_consistency import tolerance


def claims(text: str):
    return parse_claims_text(text)


def test_canonical_form():
    c = claims(json.dumps({"author": "A", "github_id": "a", "name": "n", "date": "2026-03-18T14:56:29Z", "val_loss": 2.07,
                           "val_bpb": 1.2243657, "bytes_total": 15863489, "bytes_code": 47642}, indent=2))
    assert (c.val_bpb, c.val_loss, c.bytes_total, c.bytes_code) == (1.2243657, 2.07, 15863489, 47642)
    assert (c.author, c.github_id, c.name, c.date) == ("A", "a", "n", "2026-03-18T14:56:29Z")
    assert not c.repairs and not c.problems
    assert c.key_lines["val_bpb"] == 7 and c.key_lines["author"] == 2


def test_bom_on_disk(tmp_path):
    p = tmp_path / "submission.json"
    p.write_bytes(b"\xef\xbb\xbf" + b'{"val_bpb": 1.1, "author": "x"}\r\n')
    c = read_claims(p, tmp_path, "submission.json")
    assert c.val_bpb == 1.1 and any("byte-order mark" in r for r in c.repairs) and not c.problems


def test_fence_json_token_heredoc_trailing_and_missing_commas_concatenation():
    fenced = claims('{"val_bpb": 1.2, "author": "a"}\n```\n')
    assert fenced.val_bpb == 1.2 and "removed Markdown code fences" in fenced.repairs
    tok = claims('json{"val_bpb": 1.3, "author": "a"}')
    assert tok.val_bpb == 1.3 and "removed a leading 'json' token" in tok.repairs
    heredoc = claims("cat > records/track_10min_16mb/x/submission.json <<'EOF'\n{\n  \"val_bpb\": 1.4,\n  \"author\": \"a\"\n}\nEOF\n")
    assert heredoc.val_bpb == 1.4 and "unwrapped a shell heredoc around the JSON" in heredoc.repairs
    assert heredoc.key_lines["val_bpb"] == 3  # lines of the file as committed
    trailing = claims('{"val_bpb": 1.5, "seeds": [1, 2,], "author": "a",}')
    assert trailing.val_bpb == 1.5 and trailing.seeds == [1, 2] and "removed trailing commas" in trailing.repairs
    missing = claims('{\n "author": "a"\n "val_bpb": 1.6\n "github_id": "g"\n}')
    assert missing.val_bpb == 1.6 and missing.github_id == "g" and "inserted a missing comma" in missing.repairs
    two = claims('{"val_bpb": 1.7, "author": "a"}\n{"val_bpb": 9.9}')
    assert two.val_bpb == 1.7 and "accepted the first of several JSON objects" in two.repairs


def test_unreadable_json_is_a_problem_not_an_exception():
    c = claims('{"val_bpb": 1.2, "name": "unterminated}')
    assert c.val_bpb is None and c.problems and c.problems[0].message.startswith("invalid JSON")
    assert c.problems[0].file == "submission.json"
    assert claims("").problems and claims("[1, 2]").problems and claims("no json here").problems


def test_string_numbers_and_placeholders():
    s = claims('{"val_bpb": "1.1690", "bytes_total": "15863489", "author": "a"}')
    assert s.val_bpb == 1.169 and printed_decimals(s.val_bpb) == 4 and s.bytes_total == 15863489
    assert any("string" in r for r in s.repairs)
    for ph in ("pending", "TBD", "PENDING", "TBD_AFTER_TRAINING", "<3-seed mean -- fill after runs>", "N/A - ablation study, see README", None):
        c = claims(json.dumps({"val_bpb": ph, "author": "a"}))
        assert c.val_bpb is None, ph
        assert any("no claimed score" in p.message for p in c.problems), ph
    mixed = claims('{"val_bpb": "1.2930 (1xH100, neural) / 5.0425 (hybrid best)"}')
    assert mixed.val_bpb == 1.293 and any("leading number" in p.message for p in mixed.problems)
    date = claims('{"val_bpb": 1.2, "date": "FILL_AFTER_RUN"}')
    assert date.date is None and any("date" in p.message for p in date.problems)


def test_synonyms_fold():
    c = claims(json.dumps({"mean_val_bpb": 1.15, "artifact_bytes_max": 15_900_000, "code_size_bytes": 60_000, "authors": ["x", "y"],
                           "github": "gh", "std_val_bpb": 0.0004, "mean_val_loss": 1.94}))
    assert (c.val_bpb, c.bytes_total, c.bytes_code, c.val_bpb_std, c.val_loss) == (1.15, 15_900_000, 60_000, 0.0004, 1.94)
    assert c.author == "x, y" and c.github_id == "gh"
    assert "val_bpb taken from 'mean_val_bpb'" in c.repairs
    assert c.key_lines["val_bpb"] == c.key_lines["mean_val_bpb"]
    pending_then_mean = claims('{"val_bpb": "pending", "val_bpb_mean": 1.16}')
    assert pending_then_mean.val_bpb == 1.16
    nested = claims('{"val_bpb": {"mean": 1.17, "std": 0.001}}')
    assert nested.val_bpb == 1.17


def test_seeds_and_seed_results_in_every_shape():
    d = claims(json.dumps({"val_bpb": 1.1, "seeds": [42, 314, 999],
                           "seed_results": {"42": {"val_bpb": 1.09, "artifact_bytes": 15_990_000}, "seed_314": {"bpb": "1.10"},
                                            "999": 1.11}}, indent=2))
    assert d.seeds == [42, 314, 999]
    assert d.seed_results[42]["val_bpb"] == 1.09 and d.seed_results[42]["bytes_total"] == 15_990_000
    assert d.seed_results[314]["val_bpb"] == 1.10 and d.seed_results[999]["val_bpb"] == 1.11
    assert d.key_lines["seed_results.42.val_bpb"] > d.key_lines["seed_results"]
    lst = claims('{"val_bpb": 1.1, "seed_results": [{"seed": 1, "val_bpb": 1.0}, {"seed": "2", "val_bpb": 1.2}]}')
    assert lst.seeds == [1, 2] and lst.seed_results[2]["val_bpb"] == 1.2
    as_dict = claims('{"val_bpb": 1.1, "seeds": {"1337": 1.09, "42": {"val_bpb": 1.11}}}')
    assert as_dict.seeds == [1337, 42] and as_dict.seed_results[1337]["val_bpb"] == 1.09 and as_dict.seed_results[42]["val_bpb"] == 1.11
    spread = claims('{"val_bpb": 1.1, "seed_1337": {"val_bpb": 1.09}, "val_bpb_seed42": 1.11, "bytes_seed42": 15000000}')
    assert spread.seeds == [42, 1337] and spread.seed_results[42] == {"val_bpb": 1.11, "bytes_total": 15000000}
    per_seed = claims('{"val_bpb": 1.1, "seeds": [1, 2], "val_bpb_per_seed": [1.05, 1.15]}')
    assert per_seed.seed_results == {1: {"val_bpb": 1.05}, 2: {"val_bpb": 1.15}}


def test_track_normalisation():
    for spelling, want in [("10min_16mb", "10min"), ("track_10min_16mb", "10min"), ("10min-16mb", "10min"), ("record", "10min"),
                           ("non_record_16mb", "non_record"), ("non-record-unlimited-compute-16mb", "non_record"),
                           ("track_non_record_16mb", "non_record"), ("non-record-10min-16mb", "non_record")]:
        assert claims(json.dumps({"val_bpb": 1.0, "track": spelling})).track == want, spelling
    odd = claims('{"val_bpb": 1.0, "track": "phase3"}')
    assert odd.track is None and any("track" in p.message for p in odd.problems)


def test_printed_precision_and_tolerance():
    c = claims('{"val_bpb": 1.1400}')
    assert printed_decimals(c.val_bpb) == 4 and abs(tolerance(c.val_bpb) - 1e-4) < 1e-9
    assert printed_decimals(claims('{"val_bpb": 1.22436570}').val_bpb) == 8
    assert abs(tolerance(claims('{"val_bpb": 1.14}').val_bpb) - 0.005) < 1e-9
    assert printed_decimals(claims('{"val_bpb": 1e-1}').val_bpb) == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(list('{}[]",:0123456789.abcvl_ \n`<') + ['"val_bpb"', '"pending"', "\ufeff", "json", "<<EOF\n", "\nEOF"]),
                max_size=80).map("".join))
def test_never_raises(text):
    c = parse_claims_text(text)
    assert c.val_bpb is None or isinstance(c.val_bpb, (int, float))
