"""Artifact bytes as measured (records.md §4.2): which model file, which seed's total, which source the
verdict uses. Each test names the rule it protects; a mutant that picks the smallest file or the
smallest seed total, or trusts a log over the shipped files, fails one of them."""
from __future__ import annotations

from auditor.model import Severity
from rules.time_logs import baseline_log, three_seeds
from tests.helpers import audit_one, write_folder

ENTRY = "print(1)\n"  # 9 shipped bytes


def _audit(tmp_path, files, rules=("ARTIFACT-16MB",)):
    return audit_one(write_folder(tmp_path, files), only_rules=set(rules))


def _seeds(models: dict[int, int], code: int = 9) -> dict[str, str]:
    return {f"train_seed{s}.log": baseline_log(s, 1.22, 2.07, model=m, code=code) for s, m in models.items()}


def test_the_largest_model_file_is_the_one_counted(tmp_path):
    rec = _audit(tmp_path, {"train_gpt.py": ENTRY, "small.ptz": b"x" * 100, "final_model.int8.ptz": b"x" * 300, **three_seeds(code=9)})
    m = rec.measured
    assert m.extra["bytes"]["model_file"] == {"path": "final_model.int8.ptz", "bytes": 300}
    assert (m.bytes_code, m.bytes_model, m.bytes_total, m.bytes_source) == (9, 300, 309, "measured")
    assert m.extra["bytes_model_source"] == "file"
    assert {s["model_source"] for s in m.extra["bytes"]["per_seed"]} == {"file"}
    assert [s["measured_total"] for s in m.extra["bytes"]["per_seed"]] == [309, 309, 309]


def test_a_final_model_file_without_a_known_suffix_is_the_model_but_a_pt_checkpoint_is_not(tmp_path):
    rec = _audit(tmp_path / "a", {"train_gpt.py": ENTRY, "final_model.bin": b"x" * 50, **three_seeds(code=9)})
    assert rec.measured.extra["bytes"]["model_file"] == {"path": "final_model.bin", "bytes": 50}
    for i, name in enumerate(("final_model.pt", "final_model.log", "final_model.txt", "final_model.md")):
        rec = _audit(tmp_path / f"b{i}", {"train_gpt.py": ENTRY, name: b"x" * 50, **three_seeds(code=9)})
        assert rec.measured.extra["bytes"]["model_file"] is None, name


def test_model_suffixes_are_matched_case_blind(tmp_path):
    rec = _audit(tmp_path, {"train_gpt.py": ENTRY, "sub/Model.PTZ": b"x" * 70, **three_seeds(code=9)})
    assert rec.measured.extra["bytes"]["model_file"] == {"path": "sub/Model.PTZ", "bytes": 70}


def test_the_verdict_uses_the_largest_seed_total_not_the_smallest(tmp_path):
    rec = _audit(tmp_path, {"train_gpt.py": ENTRY, **_seeds({1337: 15_000_000, 42: 15_999_991, 2024: 14_000_000})})
    m = rec.measured
    assert (m.bytes_model, m.bytes_total, m.bytes_source) == (15_999_991, 16_000_000, "measured")
    assert m.extra["bytes_model_source"] == "logged"
    assert sorted(s["measured_total"] for s in m.extra["bytes"]["per_seed"]) == [14_000_009, 15_000_009, 16_000_000]
    assert rec.findings == []


def test_one_seed_over_the_cap_is_an_error_that_names_that_seed(tmp_path):
    rec = _audit(tmp_path, {"train_gpt.py": ENTRY, **_seeds({1337: 15_000_000, 42: 15_999_992, 2024: 14_000_000})})
    [f] = rec.findings
    assert f.severity is Severity.ERROR and f.file == "train_seed42.log"
    assert f.message.startswith("seed 42: measured 16,000,001 bytes = code 9 (files the entry point runs) + model 15,999,992 (logged)")
    assert "over 16,000,000 by 1 (verdict uses the measured figure); 1 of 3 seed(s) over the cap" in f.message
    assert f.line is not None


def test_without_an_entry_script_the_logged_total_is_used_and_said(tmp_path):
    rec = _audit(tmp_path, _seeds({1337: 15_000_000, 42: 16_000_000, 2024: 14_000_000}, code=1))
    m = rec.measured
    assert m.bytes_code is None and m.bytes_model is None
    assert (m.bytes_total, m.bytes_source) == (16_000_001, "logged")
    assert {s["measured_total"] for s in m.extra["bytes"]["per_seed"]} == {None}
    [f] = rec.findings
    assert f.severity is Severity.ERROR
    assert f.message.startswith("seed 42: logged total 16,000,001 (no entry script to measure)")
    assert "verdict uses the logged figure" in f.message


def test_the_logged_total_over_but_the_measured_under_is_a_warning(tmp_path):
    # the log counted 10,000 bytes of code; the folder ships 9: measured is under, logged is over
    rec = _audit(tmp_path, {"train_gpt.py": ENTRY, **_seeds({1337: 15_995_000, 42: 15_995_000, 2024: 15_995_000}, code=10_000)})
    [f] = rec.findings
    assert f.severity is Severity.WARNING
    assert f.message.startswith("the log's total 16,005,000 is over 16,000,000, but measured from the shipped files it is 15,995,009")


def test_claimed_bytes_stand_in_when_no_log_has_a_size(tmp_path):
    sub = '{"val_bpb": 1.2, "bytes_total": 15000000, "bytes_code": 1000}'
    rec = _audit(tmp_path / "a", {"train_gpt.py": ENTRY, "submission.json": sub})
    m = rec.measured
    assert (m.bytes_model, m.bytes_total, m.bytes_source) == (14_999_000, 14_999_009, "measured")
    assert m.extra["bytes_model_source"] == "claimed"
    assert m.extra["bytes"]["claimed_total"] == 15_000_000
    rec = _audit(tmp_path / "b", {"train_gpt.py": ENTRY, "submission.json": sub, "m.ptz": b"x" * 40})
    assert (rec.measured.bytes_model, rec.measured.bytes_total) == (40, 49)
    assert rec.measured.extra["bytes_model_source"] == "file"
    rec = _audit(tmp_path / "c", {"submission.json": '{"val_bpb": 1.2, "bytes_total": 16000001}'})
    assert (rec.measured.bytes_total, rec.measured.bytes_source) == (16_000_001, "logged")
    rec = _audit(tmp_path / "d", {"train_gpt.py": ENTRY, "submission.json": '{"val_bpb": 1.2, "bytes_total": 15000000}'})
    # no bytes_code claimed: the model cannot be told from the total, so the claimed total stands as logged
    assert (rec.measured.bytes_total, rec.measured.bytes_model, rec.measured.bytes_source) == (15_000_000, None, "logged")
    assert rec.measured.extra["bytes"]["per_seed"][0]["model"] is None


def test_tokenizer_files_are_listed_with_their_bytes_but_not_docs(tmp_path):
    rec = _audit(tmp_path, {"train_gpt.py": ENTRY, "sp.model": b"x" * 11, "sp.VOCAB": b"x" * 12, "tokenizers/t.json": b"x" * 13,
                            "tokenizers/README.md": "doc", "tokenizers/build.py": "print(2)\n", **three_seeds(code=9)})
    assert sorted((t["path"], t["bytes"]) for t in rec.measured.extra["bytes"]["tokenizer_files"]) == [
        ("sp.VOCAB", 12), ("sp.model", 11), ("tokenizers/t.json", 13)]


def test_per_seed_figures_carry_what_each_log_said(tmp_path):
    rec = _audit(tmp_path, {"train_gpt.py": ENTRY, **_seeds({1337: 100, 42: 200, 2024: 300}, code=7)})
    per = {s["seed"]: s for s in rec.measured.extra["bytes"]["per_seed"]}
    assert set(per) == {1337, 42, 2024}
    assert per[42] == {"log": "train_seed42.log", "seed": 42, "logged_code": 7, "logged_code_compressed": None, "logged_model": 200,
                       "logged_total": 207, "model": 200, "model_source": "logged", "measured_total": 209}
    assert rec.measured.extra["bytes"]["code_files"] == [{"path": "train_gpt.py", "role": "entry", "bytes": 9}]


def _without_model_line(seed: int, code: int, total: int) -> str:
    keep = [ln for ln in baseline_log(seed, 1.22, 2.07, model=total - code, code=code).splitlines(keepends=True)
            if not ln.startswith("Serialized model")]
    return "".join(keep)


def test_without_a_model_figure_the_model_is_the_logged_total_less_the_logged_code(tmp_path):
    logs = {f"train_seed{s}.log": _without_model_line(s, 1_000, 15_000_000 + s) for s in (1337, 42, 2024)}
    rec = _audit(tmp_path, {"train_gpt.py": ENTRY, **logs})
    per = {s["seed"]: s for s in rec.measured.extra["bytes"]["per_seed"]}
    assert per[1337]["model_source"] == "logged total − logged code"
    assert per[1337]["model"] == 15_000_000 + 1337 - 1_000
    assert rec.measured.bytes_total == 9 + 15_000_000 + 2024 - 1_000  # the largest seed


def test_every_compressed_model_form_the_records_ship_is_the_model_file(tmp_path):
    forms = ("m.ptz", "m.pt.zst", "m.pt.xz", "m.pt.lzma", "m.pt.br", "m.pt.gz", "m.int8.ptz", "m.int6.ptz", "m.lrz")
    for i, name in enumerate(forms):
        rec = _audit(tmp_path / str(i), {"train_gpt.py": ENTRY, name: b"x" * 21, **three_seeds(code=9)})
        assert rec.measured.extra["bytes"]["model_file"] == {"path": name, "bytes": 21}, name
    rec = _audit(tmp_path / "pt", {"train_gpt.py": ENTRY, "m.pt": b"x" * 21, **three_seeds(code=9)})
    assert rec.measured.extra["bytes"]["model_file"] is None  # an uncompressed checkpoint is not the artifact


def test_a_final_model_file_in_a_subfolder_is_the_model(tmp_path):
    rec = _audit(tmp_path, {"train_gpt.py": ENTRY, "out/final_model.bin": b"x" * 33, **three_seeds(code=9)})
    assert rec.measured.extra["bytes"]["model_file"] == {"path": "out/final_model.bin", "bytes": 33}
    assert "code_decoded_bytes" in rec.measured.extra["bytes"]


def test_the_seed_of_a_byte_figure_is_the_run_s_own_seed_line(tmp_path):
    rec = _audit(tmp_path, {"train_gpt.py": ENTRY, "train_seed7.log": baseline_log(1, 1.22, 2.07, code=9)})
    assert [s["seed"] for s in rec.measured.extra["bytes"]["per_seed"]] == [1]


def _sizeless(seed: int) -> str:
    return "".join(ln for ln in baseline_log(seed, 1.22, 2.07).splitlines(keepends=True) if "size" not in ln and "Serialized" not in ln)


def test_logs_without_byte_figures_leave_the_claimed_total(tmp_path):
    files = {f"train_seed{s}.log": _sizeless(s) for s in (1, 2, 3)}
    rec = _audit(tmp_path, {**files, "submission.json": '{"val_bpb": 1.22, "bytes_total": 15000000}'})
    m = rec.measured
    assert (m.bytes_total, m.bytes_source) == (15_000_000, "claimed")
    assert [s["logged_total"] for s in m.extra["bytes"]["per_seed"]] == [None, None, None]
    assert [s["model_source"] for s in m.extra["bytes"]["per_seed"]] == ["", "", ""]


def test_a_claimed_total_over_the_cap_is_reported_against_the_submission_file(tmp_path):
    rec = _audit(tmp_path, {"submission.json": '{"val_bpb": 1.22, "bytes_total": 16000001, "bytes_code": 1}'})
    [f] = rec.findings
    assert f.file == "submission.json" and f.evidence[0] == "bytes_total: 16000001"
    assert f.message.startswith("submission.json: logged total 16,000,001 (no entry script to measure); claimed bytes_total 16,000,001")


def test_a_model_file_too_large_to_read_is_still_measured(tmp_path):
    folder = write_folder(tmp_path, {"train_gpt.py": ENTRY, **three_seeds(code=9)})
    with open(folder / "final_model.int8.ptz", "wb") as fh:
        fh.truncate(60 * 1024 * 1024)  # sparse: 60 MiB, over the 50 MiB reading cap, costs no disk
    rec = audit_one(folder, only_rules={"ARTIFACT-16MB"})
    assert rec.measured.extra["bytes"]["model_file"] == {"path": "final_model.int8.ptz", "bytes": 60 * 1024 * 1024}
    assert [f.severity for f in rec.findings] == [Severity.ERROR]


def test_over_only_with_helper_modules_counted_is_a_contested_warning(tmp_path):
    entry = "import helper\nprint(1)\n"  # 23 bytes; the helper is 240: entry + model is exactly the cap
    rec = _audit(tmp_path, {"train_gpt.py": entry, "helper.py": "X = 1\n" * 40, **three_seeds(model=16_000_000 - 23, code=10)})
    [f] = rec.findings
    assert (f.severity, f.file, f.line) == (Severity.WARNING, "train_seed1337.log", 20)
    assert f.message.endswith("over 16,000,000 by 240 (verdict uses the measured figure); 3 of 3 seed(s) over the cap; over only when "
                              "the contested code is counted: helper modules/native sources (240 bytes, cf. #1514)")
    assert f.evidence[-1] == "code files: train_gpt.py 23 (entry), helper.py 240 (import)"
    assert f.evidence[3] == "train_seed1337.log: measured 16,000,240, logged 15,999,987, model 15,999,977 (logged)"


def test_over_with_the_entry_script_alone_is_an_error_whatever_the_helpers(tmp_path):
    entry = "import helper\nprint(1)\n"
    rec = _audit(tmp_path, {"train_gpt.py": entry, "helper.py": "X = 1\n" * 40, **three_seeds(model=16_000_000 - 22, code=10)})
    [f] = rec.findings
    assert f.severity is Severity.ERROR and "contested" not in f.message


def test_over_only_against_the_logged_compressed_code_is_a_contested_warning(tmp_path):
    entry = "print(1)\n" + "#" * 4990 + "\n"  # 5,000 shipped bytes; the log counts 1,000 compressed
    logs = {f"train_seed{s}.log": baseline_log(s, 1.22, 2.07, model=16_000_000 - 1_000, code=1_000,
                                               after="Code size (compressed): 1000 bytes\n") for s in (1337, 42, 2024)}
    rec = _audit(tmp_path, {"train_gpt.py": entry, **logs})
    [f] = rec.findings
    assert f.severity is Severity.WARNING
    assert f.message.endswith("over only when the contested code is counted: the log counts 1,000 bytes of compressed code while "
                              "5,000 bytes are shipped (cf. #1530)")
    assert f.message.startswith("seed 1337: measured 16,004,000 bytes = code 5,000 (files the entry point runs) + model 15,999,000 (logged)")


def test_the_disputed_log_total_warning_points_at_the_log_line(tmp_path):
    rec = _audit(tmp_path, {"train_gpt.py": ENTRY, **_seeds({1337: 15_995_000, 42: 15_995_000, 2024: 15_995_000}, code=10_000)})
    [f] = rec.findings
    assert (f.file, f.line) == ("train_seed1337.log", 20)
    assert f.evidence[-1] == "Total submission size int8+zlib: 16005000 bytes"


def test_an_over_cap_finding_lists_the_code_files_or_says_there_is_no_entry_script(tmp_path):
    rec = _audit(tmp_path / "a", {"train_gpt.py": ENTRY, **_seeds({1337: 15_000_000, 42: 15_999_992, 2024: 14_000_000})})
    assert rec.findings[0].evidence[-1] == "code files: train_gpt.py 9 (entry)"
    rec = _audit(tmp_path / "b", _seeds({1337: 15_000_000, 42: 16_000_000, 2024: 14_000_000}, code=1))
    assert rec.findings[0].evidence[-1] == "code files: no entry script"


def test_a_final_model_two_folders_deep_and_a_seed_from_the_log_name(tmp_path):
    log = baseline_log(7, 1.22, 2.07, code=9).replace("  seed: 7\n", "")
    rec = _audit(tmp_path, {"train_gpt.py": ENTRY, "a/b/final_model.bin": b"x" * 44, "train_seed7.log": log})
    assert rec.measured.extra["bytes"]["model_file"] == {"path": "a/b/final_model.bin", "bytes": 44}
    assert [s["seed"] for s in rec.measured.extra["bytes"]["per_seed"]] == [7]


def test_claimed_code_bytes_are_kept_with_the_claimed_seed(tmp_path):
    rec = _audit(tmp_path, {"train_gpt.py": ENTRY, "submission.json": '{"val_bpb": 1.2, "bytes_total": 15000000, "bytes_code": 1000}'})
    assert rec.measured.extra["bytes"]["per_seed"][0]["logged_code"] == 1000


def test_a_log_over_the_cap_makes_contested_code_an_error(tmp_path):
    entry = "import helper\nprint(1)\n"
    rec = _audit(tmp_path, {"train_gpt.py": entry, "helper.py": "X = 1\n" * 40, **three_seeds(model=16_000_000 - 23, code=100)})
    [f] = rec.findings
    assert f.severity is Severity.ERROR and "contested" not in f.message


def test_the_messages_carry_every_figure(tmp_path):
    rec = _audit(tmp_path / "a", {"train_gpt.py": ENTRY, **_seeds({1337: 15_000_000, 42: 15_999_992, 2024: 14_000_000})})
    assert rec.findings[0].message.startswith("seed 42: measured 16,000,001 bytes = code 9 (files the entry point runs) + model "
                                              "15,999,992 (logged); logged total 16,000,001; over")
    rec = _audit(tmp_path / "b", {"train_gpt.py": ENTRY, **_seeds({1337: 15_995_000, 42: 15_995_000, 2024: 15_995_000}, code=10_000)})
    assert rec.findings[0].message.startswith("the log's total 16,005,000 is over 16,000,000, but measured from the shipped files it is "
                                              "15,995,009 = code 9 + model 15,995,000 (logged): the log counted code")
