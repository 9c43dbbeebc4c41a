"""The train-log reader on hand-written snippets of every odd form records.md §3 lists."""
from __future__ import annotations

import hashlib
import textwrap

from hypothesis import given, settings, strategies as st

from auditor.evidence.logs import clean_line, parse_log_text, read_log

SEP = "=" * 100

SOURCE = textwrap.dedent('''\
    """A tiny training script (its source is what the baseline writes at the top of its logfile)."""
    import os
    import time

    def log0(msg):
        print(msg)

    def main():
        q_val_loss, q_val_bpb = 2.0, 1.5
        log0(f"final_int8_zlib_roundtrip_exact val_loss:{q_val_loss:.8f} val_bpb:{q_val_bpb:.8f}")
        log0(f"stopping_early: wallclock_cap train_time:{1}ms step:{2}/{3}")

    if __name__ == "__main__":
        main()
    ''')


def baseline_run(seed: int, bpb: str, *, stop_ms: int = 600038, total: int = 15863489) -> str:
    return textwrap.dedent(f"""\
        logs/run{seed}.txt
        val_bpb:enabled tokenizer_kind=sentencepiece tokenizer_path=./data/tokenizers/fineweb_1024_bpe.model
        train_loader:dataset:fineweb10B_sp1024 train_shards:80
        val_loader:shards pattern=./data/fineweb_val_*.bin tokens:62021632
        model_params:17059912
        world_size:8 grad_accum_steps:1
        train_batch_tokens:524288 train_seq_len:1024 iterations:20000 warmup_steps:20 max_wallclock_seconds:600.000
        seed:{seed}
        step:0/20000 val_loss:6.9357 val_bpb:4.1077 train_time:0ms step_avg:0.02ms
        step:1/20000 train_loss:6.9370 train_time:43ms step_avg:43.04ms
        step:13780/20000 train_loss:2.0500 train_time:{stop_ms}ms step_avg:43.54ms
        step:13780/20000 val_loss:2.0606 val_bpb:1.2172 train_time:{stop_ms}ms step_avg:43.54ms
        stopping_early: wallclock_cap train_time:{stop_ms}ms step:13780/20000
        peak memory allocated: 10184 MiB reserved: 10200 MiB
        Serialized model: 67224983 bytes
        Code size: 47642 bytes
        Total submission size: 67272625 bytes
        Serialized model int8+zlib: {total - 47642} bytes (payload:17178912 raw_torch:17224025 payload_ratio:3.91x)
        Total submission size int8+zlib: {total} bytes
        final_int8_zlib_roundtrip val_loss:2.0727 val_bpb:{float(bpb):.4f} eval_time:1401ms
        final_int8_zlib_roundtrip_exact val_loss:2.07269931 val_bpb:{bpb}
        """)


TORCHRUN_NOISE = textwrap.dedent("""\
    W0318 14:37:59.159000 871689 site-packages/torch/distributed/run.py:852] *****************************************
    [W318 14:38:11.514156940 Utils.hpp:137] Warning: Environment variable NCCL_ASYNC_ERROR_HANDLING is deprecated
    NCCL version 2.27.5+cuda12.9
    [2026-03-18 14:38:12] pgut1-0:871784:871848 [5] ibvwrap.c:94 NCCL WARN Call to ibv_open_device failed
    """)


def test_baseline_logfile_with_embedded_source_and_torchrun_noise():
    text = TORCHRUN_NOISE + SOURCE + "\n" + SEP + "\nRunning Python 3.12.3\nRunning PyTorch 2.8.0+cu128\n" + SEP + "\n" + baseline_run(1337, "1.22436570")
    lf = parse_log_text(text)
    assert len(lf.runs) == 1
    run = lf.runs[0]
    # the format strings inside the source are not taken for score or stop lines
    assert [e.label for e in run.evals if not e.label.startswith("step:")] == ["final_int8_zlib_roundtrip", "final_int8_zlib_roundtrip_exact"]
    assert run.final.label == "final_int8_zlib_roundtrip_exact" and run.final.val_bpb == 1.2243657
    assert run.complete and run.final.after_stop
    n_noise = TORCHRUN_NOISE.count("\n")
    block = SOURCE.split("\n")  # the source lines and the blank line log0 adds before the separator
    assert len(run.embedded_code) == 1
    code = run.embedded_code[0]
    assert code.line == n_noise + 1 and not code.elided
    assert code.sha256 == hashlib.sha256("\n".join(block).encode()).hexdigest() == hashlib.sha256(SOURCE.encode()).hexdigest()
    assert run.seed == 1337 and run.world_size == 8 and run.grad_accum_steps == 1
    assert run.iterations == 20000 and run.max_wallclock_seconds == 600.0 and run.steps == 13780
    assert run.stop.value == 600038 and run.train_time_ms == 600038 and run.step_avg_ms == 43.54
    assert run.code_bytes.value == 47642 and run.total_bytes.value == 15863489 and run.total_bytes.tag == "int8+zlib"
    assert run.model_bytes.tag == "int8+zlib"
    assert run.val_tokens == 62021632 and run.train_shards == 80 and run.tokenizer_path.endswith("fineweb_1024_bpe.model")
    # line numbers are those of the original file
    lines = text.split("\n")
    assert lines[run.final.line - 1] == run.final.text
    assert lines[run.stop.line - 1].startswith("stopping_early")
    assert run.final.eval_time_ms is None and run.evals[-2].eval_time_ms == 1401


def test_corpus_marker_stands_for_elided_code():
    sha = "ab" * 32
    text = f"[pgolf-corpus: embedded source code elided: 1126 lines, 47642 bytes, sha256={sha}]\n{SEP}\n" + baseline_run(1, "1.20000000")
    run = parse_log_text(text).runs[0]
    assert run.embedded_code[0].elided and run.embedded_code[0].sha256 == sha and run.embedded_code[0].n_lines == 1126
    assert run.embedded_code[0].line == 1


def test_three_runs_in_one_log_and_the_last_complete_one_wins():
    text = "".join(SOURCE + "\n" + SEP + "\n" + baseline_run(1337, b) for b in ("1.19763674", "1.20840424", "1.16301431"))
    text += "step:0/20000 val_loss:6.9 val_bpb:4.1 train_time:0ms step_avg:0.01ms\nstep:1/20000 train_loss:6.9 train_time:40ms step_avg:40.00ms\n"
    lf = parse_log_text(text)
    assert [r.final.val_bpb for r in lf.runs[:3]] == [1.19763674, 1.20840424, 1.16301431]
    assert len(lf.runs) == 4 and not lf.runs[3].complete  # a killed fourth run
    assert lf.last_run is lf.runs[2]
    assert lf.runs[1].first_line == lf.runs[0].last_line + 1
    assert all(len(r.embedded_code) == 1 for r in lf.runs[:3])


def test_prefixes_are_stripped_but_line_numbers_kept():
    assert clean_line("[default0]:step:1/10 train_loss:3.0") == "step:1/10 train_loss:3.0"
    assert clean_line("[rank3]:seed:7") == "seed:7"
    assert clean_line("1776142348.135 quantized_ttt_phased val_loss:2.3 val_bpb:1.07") == "quantized_ttt_phased val_loss:2.3 val_bpb:1.07"
    assert clean_line("[2026-03-25 11:17:32] INFO: step:0/20000 val_loss:6.93") == "step:0/20000 val_loss:6.93"
    assert clean_line("\x1b[32mfinal_slot val_loss:0.9 val_bpb:0.58\x1b[0m") == "final_slot val_loss:0.9 val_bpb:0.58"
    text = "\n".join(f"[default0]:{x}" for x in baseline_run(42, "1.11111111").splitlines()) + "\n"
    run = parse_log_text(text).runs[0]
    assert run.seed == 42 and run.final.val_bpb == 1.11111111 and run.final.text.startswith("[default0]:")
    ts = "\n".join(f"1776142348.{i:03d} {x}" for i, x in enumerate(baseline_run(5, "1.0"[:3] + "5000000").splitlines())) + "\n"
    assert parse_log_text(ts).runs[0].final.val_bpb == 1.05


LATE = textwrap.dedent("""\
    ====================================================================================================
    Hyperparameters:
      gptq_reserve_seconds: 0.5
      iterations: 20000
      max_wallclock_seconds: 600.0
      seed: 314
      tokenizer_path: ./data/tokenizers/fineweb_8192_bpe.model
      world_size: 8
    ====================================================================================================
    train_shards: 80
    val_tokens: 40540160
    model_params:35945671
    gptq:reserving 0s, effective=599500ms
    warmup_step: 1/20
    0/20000 val_loss: 9.0100 val_bpb: 3.4900
    1/20000 train_loss: 9.0000 train_time: 0.0m tok/s: 100000
    4900/20000 train_loss: 2.9000 train_time: 9.8m tok/s: 7000000
    4958/20000 val_loss: 2.8100 val_bpb: 1.0880
    stopping_early: wallclock_cap train_time: 599544ms step: 4958/20000
    Code size (uncompressed): 151766 bytes
    Code size (compressed): 31250 bytes
    diagnostic pre-quantization post-ema val_loss:2.33719123 val_bpb:1.06793584 eval_time:7680ms
    Serialized model quantized+brotli: 15921440 bytes
    Total submission size quantized+brotli: 15952690 bytes
    diagnostic quantized val_loss:2.35273457 val_bpb:1.07503808 eval_time:11385ms
    beginning TTT eval timer
    ttp: b777/782 bl:2.3 bb:1.06 rl:2.3 rb:1.06 dl:1 gd:0
    tttg: c1/111 lr:0.001 t:1.0s
      ttt_chunk [1/10] bpb=1.0700 time=1.0s
    sliding_eval [ 50%] 5/10 windows running_bpb=1.0500
    quantized_ttt_phased val_loss:2.32449303 val_bpb:1.06220261 eval_time:479589ms
    total_eval_time:479.6s
    """)


def test_late_format_with_hyperparameter_dump_and_phased_ttt():
    run = parse_log_text(LATE).runs[0]
    assert run.seed == 314 and run.world_size == 8 and run.iterations == 20000 and run.max_wallclock_seconds == 600.0
    assert run.gptq_reserve_s == 0.5  # the dump is more precise than "gptq:reserving 0s"
    assert run.hyperparameters["tokenizer_path"] == run.tokenizer_path == "./data/tokenizers/fineweb_8192_bpe.model"
    assert run.train_shards == 80 and run.val_tokens == 40540160
    assert run.stop.value == 599544 and run.steps == 4958
    assert run.final.label == "quantized_ttt_phased" and run.final.val_bpb == 1.06220261 and run.final.eval_time_ms == 479589
    assert run.total_eval_time_s == 479.6
    assert run.code_bytes.value == 151766 and run.code_bytes.tag == "uncompressed" and run.code_bytes_compressed.value == 31250
    assert run.total_bytes.value == 15952690 and run.total_bytes.tag == "quantized+brotli"
    labels = [e.label for e in run.evals if not e.label.startswith("step:")]
    assert "diagnostic quantized" in labels and not any("chunk" in x or "sliding_eval" in x for x in labels)
    assert run.markers["ttt"][0][0] == LATE.splitlines().index("beginning TTT eval timer") + 1


def test_minutes_train_time_without_a_stop_line():
    text = "1/100 train_loss: 9.0 train_time: 0.0m tok/s: 1\n100/100 train_loss: 3.0 train_time: 2.5m tok/s: 1\n" \
           "100/100 val_loss: 2.9 val_bpb: 1.3\nquantized val_loss:2.95 val_bpb:1.31 eval_time:100ms\n"
    run = parse_log_text(text).runs[0]
    assert run.stop is None and run.train_time_ms == 150000.0 and run.steps == 100
    assert run.final.label == "quantized" and run.final.after_stop  # the run ended on `iterations`


def test_exact_twin_and_label_variants():
    text = baseline_run(1, "1.30000000").replace(
        "final_int8_zlib_roundtrip_exact val_loss:2.07269931 val_bpb:1.30000000\n",
        "final_sliding_window_eval_exact stride:64 val_loss:1.98689302 val_bpb:1.17675183\n"
        "final_sliding_window_eval stride:64 val_loss:1.9869 val_bpb:1.1768 eval_time:274602ms\n")
    run = parse_log_text(text).runs[0]
    assert run.final.label == "final_sliding_window_eval_exact" and run.final.val_bpb == 1.17675183
    echo = parse_log_text("stopping_early: wallclock_cap train_time:600000ms step:9/9\n"
                          "Final BPB: final_int6_sliding_window_exact val_loss:1.88639160 val_bpb:1.11722989\n").runs[0]
    assert echo.final.label == "final_int6_sliding_window_exact"
    eq = parse_log_text("stopping_early: wallclock_cap train_time:600000ms step:9/9\n"
                        "ttt_sliding:done val_loss=1.974980 val_bpb=1.169697 elapsed=488.9s\n").runs[0]
    assert eq.final.val_bpb == 1.169697 and eq.final.eval_time_ms == 488900.0
    kv = parse_log_text("stopping_early: wallclock_cap train_time:600000ms step:9/9\n"
                        "final_sliding_window_exact sliding_bpb:1.14775606 val_bpb:0.93933506\n"
                        "final_integrated_exact model_bpb:1.16001811 ngram_bpb:0.32101837 delta_bpb:0.1\n").runs[0]
    assert [(e.label, e.val_bpb) for e in kv.evals] == [("final_sliding_window_exact", 0.93933506), ("final_integrated_exact", 0.32101837)]
    summary = parse_log_text("step:5/5 train_loss:3.0 train_time:10ms step_avg:2ms\n---\nval_bpb:          1.194716\ntraining_seconds: 10.2\n").runs[0]
    assert summary.final.val_bpb == 1.194716


def test_diagnostic_and_progress_lines_are_never_final():
    text = ("stopping_early: wallclock_cap train_time:600000ms step:9/9\n"
            "final_int6_roundtrip_exact val_loss:1.9 val_bpb:1.15\n"
            "DIAGNOSTIC post_ema val_loss:2.2684 val_bpb:1.10 eval_time:4391ms\n"
            "ngram_two_pass: Pass 1 done val_bpb=1.120857 tokens_scored=7754688 time=88.5s\n"
            "prequant_ttt:epoch 1/21 val_bpb=1.087252 lr=0.000500 time=60.8s\n"
            "raw model val_bpb:1.1201\n")
    run = parse_log_text(text).runs[0]
    assert run.final.label == "final_int6_roundtrip_exact" and run.final.val_bpb == 1.15


def test_truncated_run_has_no_final_but_keeps_the_last_validation():
    text = "step:0/20000 val_loss:6.9 val_bpb:4.1 train_time:0ms step_avg:0.01ms\nstep:1/20000 train_loss:6.9 train_time:40ms step_avg:40ms\n" \
           "step:200/20000 val_loss:3.0 val_bpb:1.8 train_time:8000ms step_avg:40ms\nTraceback (most recent call last):\n"
    run = parse_log_text(text).runs[0]
    assert not run.complete and run.final.label == "step:200" and run.final.val_bpb == 1.8
    assert run.markers["error"][0][0] == 4


def test_eval_only_lines_before_any_training_count():
    run = parse_log_text("TTT_EVAL_ONLY=1 — skipping training\nlegal_ttt_exact val_loss:1.89013115 val_bpb:1.11944510\n").runs[0]
    assert run.final.val_bpb == 1.1194451 and "eval_only" in run.markers


def test_markers_for_eval_integrity_rules():
    text = ("stopping_early: wallclock_cap train_time:600000ms step:9/9\n"
            "Starting N-gram eval: order 2-9, buckets=4194304, chunk=65536\n"
            "  ngram_pass2: rescoring all chunks with full cache (237 chunks)\n"
            "[ppm_mix] order=5 H=0.99\n"
            "ngram_prefill:rank1 done\n"
            "final_ngram_exact val_loss:0.22194135 val_bpb:0.13144617\n")
    run = parse_log_text(text).runs[0]
    assert run.markers["ngram"][0][0] == 2
    assert run.markers["ngram_pass2"][0][0] == 3
    assert run.markers["ppm_mix"][0][0] == 4
    assert run.markers["prefill"][0][0] == 5
    assert run.final.label == "final_ngram_exact"


def test_world_size_and_cap_of_a_one_gpu_run():
    text = baseline_run(1, "1.30000000", stop_ms=2400100).replace("world_size:8 grad_accum_steps:1", "world_size:2 grad_accum_steps:4") \
        .replace("max_wallclock_seconds:600.000", "max_wallclock_seconds:2400.000")
    run = parse_log_text(text).runs[0]
    assert run.world_size == 2 and run.max_wallclock_seconds == 2400.0 and run.stop.value == 2400100


def test_files_utf16_binary_missing(tmp_path):
    p = tmp_path / "ps.log"
    p.write_bytes(baseline_run(9, "1.25000000").replace("\n", "\r\n").encode("utf-16"))
    lf = read_log(p, tmp_path, "ps.log")
    assert not lf.problems and lf.runs[0].final.val_bpb == 1.25 and lf.sha256
    b = tmp_path / "blob.log"
    b.write_bytes(bytes(range(256)) * 10)
    lf = read_log(b, tmp_path, "blob.log")
    assert lf.problems and "binary" in lf.problems[0].message and lf.problems[0].file == "blob.log"
    lf = read_log(tmp_path / "nope.log", tmp_path, "nope.log")
    assert lf.problems and lf.runs == []
    e = tmp_path / "empty.log"
    e.write_text("")
    assert read_log(e, tmp_path, "empty.log").runs == []


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(baseline_run(1, "1.2").splitlines() + LATE.splitlines() + SOURCE.splitlines()
                                + ["", "import x", "def f(:", "[rank0]:", "stopping_early:", "val_bpb:", "x" * 300]), max_size=60))
def test_never_raises_on_shuffled_log_lines(lines):
    lf = parse_log_text("\n".join(lines))
    for run in lf.runs:
        assert run.first_line <= run.last_line
        if run.final is not None:
            assert run.final.val_bpb is not None


def test_final_line_of_a_text_is_the_audits_final_score():
    from auditor.evidence.logs import final_line

    text = ("step:1/2 train_loss:3.0000\nstep:2/2 val_loss:2.9 val_bpb:4.1\nstopping_early\n"
            "final_int8_zlib_roundtrip val_loss:2.5000 val_bpb:3.6067\n"
            "final_int8_zlib_roundtrip_exact val_loss:2.50001234 val_bpb:3.60670000\n"
            "diagnostic_neural_only val_loss:1.2\n")
    got = final_line(text)
    assert got is not None and got.label == "final_int8_zlib_roundtrip_exact" and got.val_loss == 2.50001234
    assert final_line("") is None
