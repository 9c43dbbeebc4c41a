"""The toy configuration turns on an eval feature the record's logs show running, also when its
default is computed (on with 8 GPUs, off on the probe's single process)."""
from __future__ import annotations

from auditor.reproduce.cpu_toy import TOY_KNOBS, script_defaults, toy_env

SCRIPT = ('_ngram_default = "1" if world_size > 1 else "0"\n'
          'use_ngram = bool(int(os.environ.get("NGRAM_CACHE", _ngram_default)))\n'
          'order = int(os.environ.get("NGRAM_ORDER", "7"))\nttt = int(os.environ.get("TTT_ENABLED", "0"))\n'
          'flag = os.environ.get("USE_KNN", "True")\n')


def test_computed_default_of_a_logged_switch_is_turned_on():
    env = toy_env(["NGRAM_CACHE", "NGRAM_ORDER"], "ngram_cache:enabled alpha=0.4 order=7", script_defaults(SCRIPT))
    assert env == {"NGRAM_CACHE": "1"}  # the order keeps the record's own 7: not a switch


def test_switches_stay_off_unless_the_logs_show_them():
    d = script_defaults(SCRIPT)
    assert toy_env(["NGRAM_CACHE", "TTT_ENABLED"], "step:1/2 val_loss:3.1", d) == {}
    assert toy_env(["TTT_ENABLED"], "ttt_enabled: 1", d) == {"TTT_ENABLED": "1"}
    assert toy_env(["USE_KNN"], "use_knn on", d) == {}  # a literal non-zero default is the record's choice


def test_eval_cache_tables_are_shrunk_so_collisions_happen_at_toy_size():
    env = toy_env(["NGRAM_BUCKETS", "NGRAM_EVAL_BUCKETS", "BIGRAM_BUCKETS"], "", {})
    assert env == {"NGRAM_BUCKETS": "64", "NGRAM_EVAL_BUCKETS": "64"}  # the model's bigram embedding table is not an eval cache


def test_a_switch_the_logs_show_off_stays_off():
    """PR #869's log says ``TTT: skipped (TTT_ENABLED=0 — ngram eval provides primary metric)``: naming the
    switch with a 0 is not the feature running (turning TTT on moved the probe's last scoring call off the
    record's n-gram eval)."""
    d = script_defaults(SCRIPT)
    assert toy_env(["TTT_ENABLED"], "TTT: skipped (TTT_ENABLED=0 — ngram eval provides primary metric)", d) == {}
    assert toy_env(["TTT_ENABLED"], "ttt_enabled:False\nstep:1/2", d) == {}
    assert toy_env(["TTT_ENABLED"], "seed 1: ttt_enabled=0\nseed 2: ttt_enabled=1", d) == {"TTT_ENABLED": "1"}
    assert toy_env(["NGRAM_CACHE"], "ngram_cache:enabled", d) == {"NGRAM_CACHE": "1"}


def test_a_second_ttt_of_the_record_gets_the_toy_values_of_its_ttt_knobs():
    # PR #1487's pre-quant TTT (PREQUANT_TTT_EPOCHS=6 by default) timed out at toy size with its own epochs
    env = toy_env({"PREQUANT_TTT_EPOCHS", "PREQUANT_TTT_BATCH_SEQS", "PREQUANT_TTT_LR", "TTT_EPOCHS", "NOT_TTT_THING"}, "", {})
    assert env["PREQUANT_TTT_EPOCHS"] == env["TTT_EPOCHS"] == TOY_KNOBS["TTT_EPOCHS"]
    assert env["PREQUANT_TTT_BATCH_SEQS"] == TOY_KNOBS["TTT_BATCH_SEQS"]
    assert "PREQUANT_TTT_LR" not in env and "NOT_TTT_THING" not in env  # only knobs with a toy value


def test_ttt_epochs_are_capped_at_the_records_own_value_never_raised():
    # one epoch of score-then-train is legal; the toy run must not add a second epoch that re-scores
    assert toy_env({"TTT_EPOCHS"}, "", {"TTT_EPOCHS": "1"})["TTT_EPOCHS"] == "1"
    assert toy_env({"TTT_EPOCHS"}, "ttt_epochs:1 ttt_lr:0.002", {"TTT_EPOCHS": "3"})["TTT_EPOCHS"] == "1"  # the run's own value
    assert toy_env({"TTT_EPOCHS"}, "", {"TTT_EPOCHS": "8"})["TTT_EPOCHS"] == TOY_KNOBS["TTT_EPOCHS"] == "2"
    assert toy_env({"PREQUANT_TTT_EPOCHS"}, "", {"PREQUANT_TTT_EPOCHS": "1"})["PREQUANT_TTT_EPOCHS"] == "1"
    assert toy_env({"TTT_EPOCHS"}, "", {"TTT_EPOCHS": "args.x"})["TTT_EPOCHS"] == "2"  # a computed default: the toy value


def test_document_wise_ttt_batches_are_toy_sized():
    """TTT_BATCH_SIZE counts documents per LoRA batch (64 in the 2026-04 records; their warmup ran 64 × 128 tokens)."""
    assert toy_env(["TTT_BATCH_SIZE"], "", {"TTT_BATCH_SIZE": "64"}) == {"TTT_BATCH_SIZE": "4"}


def test_a_log_that_embeds_the_script_does_not_switch_its_features_on():
    """PR #786 logs its own source: ``ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "0")))`` and
    ``if args.ttt_enabled:`` are code, not the run saying TTT ran (it turned on a TTT eval the record did not run)."""
    d = script_defaults(SCRIPT)
    log = ('    ttt_enabled = bool(int(os.environ.get("TTT_ENABLED", "0")))\n    if args.ttt_enabled:\n        torch.cuda.synchronize()\n'
           'final_compressed_eval val_loss:1.3725 val_bpb:0.8128\n')
    assert toy_env(["TTT_ENABLED"], log, d) == {}
    assert toy_env(["TTT_ENABLED"], log + "ttt_enabled: True\n", d) == {"TTT_ENABLED": "1"}


def test_knobs_read_through_an_env_wrapper_count():
    """The ternary/binary records read every knob through ``_e(k, d, t)``: their knobs (TOKENIZER_PATH,
    ITERATIONS, …) were invisible, so no toy value and the README's ./data tokenizer path was used."""
    from auditor.reproduce.imports import scan_script

    src = ('import os\ndef _e(k, d, t=str):\n    v = os.environ.get(k, str(d))\n    return t(v)\n'
           'class H:\n    iterations = _e("ITERATIONS", 2000, int)\n    tok = _e("TOKENIZER_PATH", "./data/tokenizers/x.model")\n'
           '    ratios = _e("RATIOS", "0.3,0.3")\n')
    assert {"ITERATIONS", "TOKENIZER_PATH", "RATIOS"} <= set(scan_script(src, set()).env_reads)
    assert script_defaults(src) == {"ITERATIONS": "2000", "TOKENIZER_PATH": "./data/tokenizers/x.model", "RATIOS": "0.3,0.3"}
    assert toy_env(scan_script(src, set()).env_reads, "", script_defaults(src)) == {"ITERATIONS": "2"}


def test_a_feature_switched_on_at_a_training_step_is_on_within_the_toy_run():
    """2026-03-31_ParallelResiduals_MiniDepthRecurrence turns depth recurrence on at step 3000 (logged
    'recurrence:activated step:3000'); at two toy steps it never did and its GPTQ code hit an IndexError."""
    assert toy_env(["RECUR_START_STEP", "ITERATIONS"], "", {"RECUR_START_STEP": "3000"}) == {"RECUR_START_STEP": "1", "ITERATIONS": "2"}


def test_a_switch_logged_under_its_features_own_name_with_a_value_is_on():
    # PR #713 logs "improvements: … ttt=True" for TTT_ENABLED (default 0)
    assert toy_env({"TTT_ENABLED"}, "improvements: ema ttt=True", {"TTT_ENABLED": "0"}).get("TTT_ENABLED") == "1"
    assert "TTT_ENABLED" not in toy_env({"TTT_ENABLED"}, "improvements: ema ttt=False", {"TTT_ENABLED": "0"})
    # a bare mention of the stem, or a non-literal after it, is no evidence
    assert "TTT_ENABLED" not in toy_env({"TTT_ENABLED"}, "TTT: skipped (ngram eval provides the metric)", {"TTT_ENABLED": "0"})


def test_minified_code_in_the_log_does_not_switch_a_feature_on():
    """Merged 2026-03-31_ParallelResiduals_MiniDepthRecurrence logs its minified source: a line holding
    ``use_slot=getattr(args,'slot_enabled',_C)`` switched SLOT on, an eval its run never used (it optimizes on the
    batch's own targets: a false PROBE-SUFFIX-FLIP and PROBE-LEDGER on a merged record)."""
    d = {"SLOT_ENABLED": "0"}
    log = ("\tseq_len=eval_seq_len or args.train_seq_len;total_tokens=val_tokens.numel()-1;"
           "use_slot=getattr(args,'slot_enabled',_C);compiled_logits=torch.compile(base_model.forward_logits)\n"
           "\t\tif use_slot:\nstep:1/2 train_loss:9.01\nfinal_int6_sliding_window_exact val_loss:1.9 val_bpb:1.1\n")
    assert toy_env(["SLOT_ENABLED"], log, d) == {}
    assert toy_env(["SLOT_ENABLED"], log + "slot_enabled: True steps:8\n", d) == {"SLOT_ENABLED": "1"}
    assert toy_env(["TTT_ENABLED"], "TTT: skipped (TTT_ENABLED=0 — ngram eval provides primary metric)", {"TTT_ENABLED": "0"}) == {}
    assert toy_env(["NGRAM_CACHE"], "ngram_cache:enabled alpha=0.4 order=7", {}) == {"NGRAM_CACHE": "1"}


def test_a_switch_never_named_is_on_when_its_feature_printed_a_score():
    """PR #1026 names NGRAM_ENABLED only in its embedded code, but its n-gram eval printed
    'ngram_cache val_loss:1.8230 val_bpb:1.0944': the feature ran. A code line printing it is not the run."""
    code = "    ngram_nll = np.full(n, -1.0) if args.ngram_enabled else None\n"
    assert toy_env(["NGRAM_ENABLED"], code + "ngram_cache val_loss:1.8230 val_bpb:1.0944 order:7\n", {"NGRAM_ENABLED": "0"}) == {"NGRAM_ENABLED": "1"}
    assert toy_env(["NGRAM_ENABLED"], code + '        log0(f"ngram_cache val_loss:{loss:.4f}")\nfinal val_loss:1.9\n',
                   {"NGRAM_ENABLED": "0"}) == {}
