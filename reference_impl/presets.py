"""Named configurations for `pgolf train --preset`. Each is the env of the generated train_gpt.py
plus how its data is made. Values are strings because they become environment variables."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    name: str
    env: dict[str, str]
    seeds: tuple[int, ...]
    nproc: int
    corpus: str  # "stdlib": built locally from this Python's sources; "fineweb": fetched sp1024
    vocab_size: int
    corpus_bytes: int = 6_000_000
    notes: str = ""
    extra: dict = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    # The full challenge baseline shape on the official data (8xH100, 600 s).
    "baseline": Preset(
        name="baseline", seeds=(1337, 42, 2025), nproc=8, corpus="fineweb", vocab_size=1024,
        env={"VOCAB_SIZE": "1024", "NUM_LAYERS": "9", "MODEL_DIM": "512", "NUM_HEADS": "8", "NUM_KV_HEADS": "4",
             "MLP_MULT": "2", "TRAIN_SEQ_LEN": "1024", "TRAIN_BATCH_TOKENS": "524288", "ITERATIONS": "20000",
             "WARMUP_STEPS": "20", "WARMDOWN_ITERS": "1200", "MAX_WALLCLOCK_SECONDS": "600", "VAL_LOSS_EVERY": "1000",
             "TRAIN_LOG_EVERY": "200"},
        notes="challenge baseline shape on FineWeb sp1024; needs `pgolf data fetch --variant sp1024` and GPUs",
    ),
    # The baseline plus a legal stack of documented gains, each a switch of the generated script and
    # each from a merged record (records/track_10min_16mb/<name>). No eval-time adaptation, no cache.
    "record": Preset(
        name="record", seeds=(1337, 42, 2025), nproc=8, corpus="fineweb", vocab_size=1024,
        env={"VOCAB_SIZE": "1024", "NUM_LAYERS": "9", "MODEL_DIM": "512", "NUM_HEADS": "8", "NUM_KV_HEADS": "4",
             "TRAIN_BATCH_TOKENS": "524288", "ITERATIONS": "20000", "WARMUP_STEPS": "20", "MAX_WALLCLOCK_SECONDS": "600",
             "VAL_LOSS_EVERY": "1000", "TRAIN_LOG_EVERY": "200",
             "TRAIN_SEQ_LEN": "2048",  # 2026-03-18_LongContextSeq2048
             "EVAL_STRIDE": "64",  # 2026-03-19_SlidingWindowEval (scored last: the record's score)
             "QUANT_FP16_EMBED": "1", "WARMDOWN_ITERS": "3600",  # 2026-03-18_FP16Embed_WD3600
             # 2026-03-19_MLP3x_QAT_Int6_SlidingWindow: 3x MLP, int6 QAT, int6 + zstd-22, its lower LRs
             # (cf. 2026-03-18_LowerLR)
             "MLP_MULT": "3", "QAT_BITS": "6", "QUANT_BITS": "6", "QUANT_MIN_CLIP": "0", "QUANT_INT6_PACK": "0",
             "COMPRESSOR": "zstd", "MATRIX_LR": "0.025", "SCALAR_LR": "0.025", "EMBED_LR": "0.035",
             "MLP_NEG_SLOPE": "0.5",  # 2026-03-23_LeakyReLU_LegalTTT_ParallelMuon
             "EMA_DECAY": "0.997",  # 2026-03-20_11L_XSA4_EMA_Int6_MLP3x_WD04_1.1271
             },
        notes="baseline + seq 2048, sliding-window eval, fp16 embedding, 3x MLP with int6 QAT and zstd, LeakyReLU^2, "
              "EMA, tuned LRs and warm-down; FineWeb sp1024, 8 GPUs",
    ),
    # A small model on the standard library's sources: minutes on two CPU cores.
    "tiny": Preset(
        name="tiny", seeds=(1337, 42, 2025), nproc=2, corpus="stdlib", vocab_size=512,
        env={"VOCAB_SIZE": "512", "NUM_LAYERS": "4", "MODEL_DIM": "128", "NUM_HEADS": "4", "NUM_KV_HEADS": "2",
             "MLP_MULT": "2", "TRAIN_SEQ_LEN": "256", "TRAIN_BATCH_TOKENS": "8192", "GRAD_ACCUM_STEPS": "1",
             "ITERATIONS": "500", "WARMUP_STEPS": "2", "WARMDOWN_ITERS": "30", "MAX_WALLCLOCK_SECONDS": "45",
             "VAL_LOSS_EVERY": "0", "TRAIN_LOG_EVERY": "10", "VAL_BATCH_SIZE": "16384", "VAL_MAX_TOKENS": "65536",
             "QUANT_MIN_NUMEL": "4096", "MATRIX_LR": "0.04", "EMBED_LR": "0.05", "SCALAR_LR": "0.04",
             # ~50 steps on CPU: a larger embedding init learns faster early (measured: -0.027 bpb at
             # equal steps), and the fp32 Newton-Schulz iteration is the cheaper one on a CPU.
             "TIED_EMBED_INIT_STD": "0.044", "MUON_NS_BF16": "0"},
        notes="4x128 GPT on Python standard-library sources (CPU, gloo)",
    ),
    # Seconds: for tests.
    "ci": Preset(
        name="ci", seeds=(1337,), nproc=2, corpus="stdlib", vocab_size=384, corpus_bytes=400_000,
        env={"VOCAB_SIZE": "384", "NUM_LAYERS": "2", "MODEL_DIM": "32", "NUM_HEADS": "2", "NUM_KV_HEADS": "1",
             "MLP_MULT": "2", "TRAIN_SEQ_LEN": "64", "TRAIN_BATCH_TOKENS": "1024", "GRAD_ACCUM_STEPS": "1",
             "ITERATIONS": "6", "WARMUP_STEPS": "1", "WARMDOWN_ITERS": "3", "MAX_WALLCLOCK_SECONDS": "600",
             "VAL_LOSS_EVERY": "3", "TRAIN_LOG_EVERY": "1", "VAL_BATCH_SIZE": "2048", "VAL_MAX_TOKENS": "4096",
             "QUANT_MIN_NUMEL": "1024", "EVAL_STRIDE": "32"},
        notes="a few seconds; used by the test-suite",
    ),
}
