"""A toy configuration of a record for the CPU probes: the record's own env knobs turned down
(short sequences, two training steps, small eval batches and chunks), its logged eval features
turned on, and a tiny dataset in the record's vocabulary size (a sentencepiece model trained here
on generated text, the shards in the challenge's format). The probes check the eval loop, not the
score: a two-step model is enough to show whether a score depends on the future.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

SEQ = 128
VAL_TOKENS = 16 * SEQ + 1
TRAIN_TOKENS = 64 * SEQ + 1
# Eval-cache hash tables shrunk to 64 buckets: at 62M tokens in 4M buckets collisions are everywhere, at
# 2,048 toy tokens in 65,536 there are none. A cache that normalizes over the vocabulary stays normalized
# under collisions; one that reads the target's own bucket (target in key) then sums above 1 in the sweep.
EVAL_CACHE_BUCKETS = 64
EVAL_CACHE_BUCKET_KNOBS = ("NGRAM_BUCKETS", "NGRAM_EVAL_BUCKETS", "NGRAM_NUM_BUCKETS", "PHRASE_BUCKETS")
# knob → toy value; set only when the script reads the knob
TOY_KNOBS = {
    "ITERATIONS": "2", "WARMUP_STEPS": "0", "WARMDOWN_ITERS": "1", "WARMDOWN_STEPS": "1", "VAL_LOSS_EVERY": "0",
    "TRAIN_LOG_EVERY": "1", "TRAIN_SEQ_LEN": str(SEQ), "EVAL_SEQ_LEN": str(SEQ), "SEQ_LEN": str(SEQ),
    "TRAIN_BATCH_TOKENS": str(8 * SEQ), "VAL_BATCH_SIZE": str(8 * SEQ), "VAL_BATCH_TOKENS": str(8 * SEQ),
    "EVAL_STRIDE": str(SEQ // 2), "SLIDING_STRIDE": str(SEQ // 2), "EVAL_BATCH_SEQS": "4", "TTT_CHUNK_TOKENS": str(4 * SEQ),
    "TTT_EPOCHS": "2", "TTT_BATCH_SEQS": "2", "TTT_STEPS": "1",
    # a feature the real run switches on at a training step (merged 2026-03-31_ParallelResiduals_MiniDepthRecurrence: depth recurrence at
    # step 3000, and its GPTQ code assumes it on) switches on within the toy run's two steps
    "RECUR_START_STEP": "1", "QAT_AFTER_STEP": "1",
    # documents per TTT batch (64 in the 2026-04 records: their compile warmup alone ran 64 × 128 tokens, 78 s at toy size)
    "TTT_BATCH_SIZE": "4",
    # document-wise TTT (per-doc LoRA): toy documents are 60–300 tokens, so a doc must count as long and hold several chunks
    "TTT_MIN_DOC_LEN": "64", "TTT_CHUNK_SIZE": str(SEQ // 4), "TTT_EVAL_SEQ_LEN": str(SEQ), "NGRAM_CHUNK_TOKENS": str(4 * SEQ), **{k: str(EVAL_CACHE_BUCKETS) for k in EVAL_CACHE_BUCKET_KNOBS},
    "SWA_EVERY": "1", "GPTQ_CALIB_SAMPLES": "2", "GPTQ_CALIB_BATCHES": "2", "CALIB_SAMPLES": "2", "MAX_WALLCLOCK_SECONDS": "0",
    "VAL_MAX_TOKENS": str(VAL_TOKENS), "MAX_VAL_TOKENS": str(VAL_TOKENS), "MODEL_DIM": "128", "EMBED_DIM": "128",
}
# eval features behind a 0/1 switch: on when the record's own logs show the feature ran
_FEATURE = re.compile(r"^(USE_)?(NGRAM|TTT|CACHE|MIX|PPM|LORA|KNN|SLOT)[A-Z_]*?(_EVAL|_ENABLED|_ENABLE)?$")


_SWITCH = re.compile(r"^(USE_)?(NGRAM|TTT|CACHE|MIX|PPM|LORA|KNN|SLOT)(_CACHE|_EVAL|_ENABLED|_ENABLE)?$")


_OFF = ("0", "false", "off", "disabled", "no", "none")
_LITERAL = re.compile(r"^([0-9.]+|true|false|on|off|enabled|disabled|yes|no|none)$")
# a log that embeds the script (log0(code)) names every knob in its code: those lines are not the run's output
# (minified code too: ``\tseq_len=…;use_slot=getattr(args,'slot_enabled',_C);…``, ``log0(f"legal_ttt val_loss:{ttt_loss:.4f}")``)
_CODE_LINE = re.compile(r"environ|^\s*(def|class|import|from|if|elif|else|for|while|return|with|try|except|assert|global)\b|^\s*@"
                        r"|\b(args|self|os)\.|getattr\(|;\s*[a-z_][a-z0-9_.]*\s*=|\b[a-z_][a-z0-9_]*\s*=\s*[a-z_][a-z0-9_.]*\("
                        r"|\b(log0?|print)\(f?['\"]|\{[a-z_][a-z0-9_.]*[:=}!]")


def _logged_values(name: str, low: str) -> list[str]:
    """The literal values the logs give ``name`` (``ttt_enabled=0``, ``ngram_cache: enabled``, ``use_knn:False``);
    ``args.ttt_enabled:`` and ``ttt_enabled = bool(…)`` in an embedded copy of the code are no values."""
    found = re.findall(r"(?<![a-z0-9_.])" + re.escape(name) + r"[ \t]*[=:][ \t]*([a-z0-9_.]+)", low)
    return [v for v in found if _LITERAL.match(v)]


def _logged_on(k: str, low: str) -> bool:
    """The logs show the feature running: a logged value that is not 0/False/off when the logs give one
    (``TTT: skipped (TTT_ENABLED=0)`` names the switch, off), else a mention of it outside lines of code."""
    names = [k.lower()] + ([k.lower().removeprefix("use_")] if k.lower().startswith("use_") else [])
    out = "\n".join(x for x in low.splitlines() if not _CODE_LINE.search(x))
    values = [v for n in names for v in _logged_values(n, out)]
    if values:
        return any(v not in _OFF for v in values)
    # the feature's own name with a value (``ttt=True`` for TTT_ENABLED); a bare mention of the stem proves nothing
    stem = re.sub(r"_(enabled|enable|eval)$", "", names[-1])
    values = _logged_values(stem, out) if stem != names[-1] else []
    if values:
        return any(v not in _OFF for v in values)
    if any(n in out for n in names):
        return True
    # a switch the logs never name, whose feature printed a score (PR #1026's NGRAM_ENABLED: "ngram_cache val_loss:1.8230")
    m = _SWITCH.match(k)
    feature = m.group(2).lower() if m else None
    return bool(feature) and any(feature in x and ("val_loss" in x or "val_bpb" in x) for x in out.splitlines())


def toy_env(env_reads: set[str] | list[str], log_text: str, defaults: dict[str, str]) -> dict[str, str]:
    reads = set(env_reads)
    low = log_text.lower()
    env = {k: v for k, v in TOY_KNOBS.items() if k in reads}
    # a second TTT of the record (PREQUANT_TTT_EPOCHS, SLOT_TTT_BATCH_SEQS): the toy value of its TTT_* knob
    for k in reads - set(env):
        i = k.find("_TTT_")
        if i > 0 and k[i + 1:] in TOY_KNOBS:
            env[k] = TOY_KNOBS[k[i + 1:]]
    # epochs are capped, never raised: one epoch of score-then-train is legal, a second that re-scores is not,
    # so a record that runs one keeps one (its logged value, else its default)
    for k in [k for k in env if k == "TTT_EPOCHS" or k.endswith("_TTT_EPOCHS")]:
        own = (_logged_values(k.lower(), low) or [defaults.get(k, "")])[-1]
        if own.isdigit() and int(own) < int(env[k]):
            env[k] = own
    low = log_text.lower()
    for k in sorted(reads):
        # a 0 default, or a computed one (``"1" if world_size > 1 else "0"``: on in the 8-GPU run, off on one process)
        d = defaults.get(k)
        computed = d is None or (d.isidentifier() and d not in ("True", "False", "None"))
        switch = d == "0" or (computed and _SWITCH.match(k))
        if _FEATURE.match(k) and switch and _logged_on(k, low):
            env[k] = "1"
    return env


# The same tables hard-coded (``self.BUCKETS = 4_194_304`` in PR #779's mixer and its copies, ``ng_buckets = 1 << 22``,
# ``def __init__(self, num_buckets: int = 4194304)``): at eval-cache scale (≥ 65,536) the literal is shrunk on its own
# line of the toy copy (line numbers kept). The model's hash embeddings (TrigramHash(num_buckets=8192)) are smaller and stay.
EVAL_CACHE_MIN_LITERAL = 65536
_CACHE_TABLE_LITERAL = re.compile(
    r"(?:^|(?<=[(,]))(?P<lhs>[ \t]*(?:self\.)?(?:ngram_|ng_|eval_|phrase_|num_|n_|default_)?buckets[ \t]*(?::[ \t]*int[ \t]*)?=[ \t]*)"
    r"(?P<val>[0-9][0-9_]*|1[ \t]*<<[ \t]*[0-9]+)(?P<rest>[ \t]*(?:[,)#].*)?)$", re.IGNORECASE | re.MULTILINE)


_BUCKET_FLOOR = re.compile(r"(?i)\b\w*buckets\w*\s*<\s*([0-9][0-9_]*)\b|\b([0-9][0-9_]*)\s*>\s*\w*buckets\w*\b")


def toy_buckets(text: str) -> int:
    """The toy size of an eval-cache table: ``EVAL_CACHE_BUCKETS``, or the script's own floor when it refuses
    fewer (PR #993: ``if buckets < 1024 …: raise ValueError``), as a power of two."""
    floor = max([int((a or b).replace("_", "")) for a, b in _BUCKET_FLOOR.findall(text)] or [0])
    n = EVAL_CACHE_BUCKETS
    while n < floor:
        n *= 2
    return n


def toy_source(text: str) -> str:
    """``text`` with hard-coded eval-cache table sizes set to the toy size (``toy_buckets``, as the env
    knobs are), every line where it was."""
    size = toy_buckets(text)

    def shrink(m: re.Match) -> str:
        v = m.group("val").replace("_", "")
        n = 1 << int(v.split("<<")[1]) if "<<" in v else int(v)
        return m.group("lhs") + str(size) + m.group("rest") if n >= EVAL_CACHE_MIN_LITERAL else m.group(0)

    return _CACHE_TABLE_LITERAL.sub(shrink, text)


def toy_bucket_env(text: str, environ: dict[str, str]) -> dict[str, str]:
    """The eval-cache knobs of ``environ`` that hold the toy size, raised to the script's floor (``toy_buckets``)."""
    size = toy_buckets(text)
    return {k: str(size) for k in EVAL_CACHE_BUCKET_KNOBS if environ.get(k) == str(EVAL_CACHE_BUCKETS) and size != EVAL_CACHE_BUCKETS}


def script_defaults(text: str) -> dict[str, str]:
    """``os.environ.get("NAME", default)`` literals of the script (and of an env wrapper ``_e("NAME", default)``)."""
    out = {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
           for m in re.finditer(r"\b_?e(?:nv)?\(\s*['\"]([A-Z0-9_]+)['\"]\s*,\s*(?:['\"]([^'\"]*)['\"]|([^,)\s]+))", text)}
    out.update({m.group(1): m.group(2) for m in re.finditer(r"environ\.get\(\s*['\"]([A-Z0-9_]+)['\"]\s*,\s*['\"]?([^'\")]*)['\"]?\s*\)", text)})
    return out


def script_vocab(text: str) -> int:
    m = re.search(r"VOCAB_SIZE['\"]\s*,\s*['\"]?(\d+)", text)
    return int(m.group(1)) if m else 1024


def _words(rng: np.random.Generator, n: int) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return ["".join(rng.choice(letters, int(rng.integers(2, 9)))) for _ in range(n)]


def tokenizer(cache: Path, vocab: int) -> Path:
    """A sentencepiece BPE model of exactly ``vocab`` pieces, trained once per size into ``cache``."""
    model = cache / f"toy_sp{vocab}.model"
    if model.is_file():
        return model
    import sentencepiece as spm

    cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(vocab)
    lex = _words(rng, max(2000, vocab * 3))
    text = cache / f"toy_sp{vocab}.txt"
    text.write_text("\n".join(" ".join(rng.choice(lex, 12)) for _ in range(max(4000, vocab * 4))), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(model.with_suffix("")), vocab_size=vocab, model_type="bpe",
                                   character_coverage=1.0, byte_fallback=vocab >= 512, minloglevel=2, num_threads=1)
    return model


def stream(model: Path, n: int, seed: int) -> np.ndarray:
    """``n`` tokens of generated text in documents that each start with the tokenizer's BOS id, as the
    challenge's shards do (document-wise evals split on it), with repeated phrases (so caches and n-gram
    statistics matter)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model))
    bos = sp.bos_id() if sp.bos_id() >= 0 else 1
    rng = np.random.default_rng(seed)
    phrases = [" ".join(_words(rng, 6)) for _ in range(12)]
    out: list[int] = []
    while len(out) < n:
        doc = [bos]
        want = int(rng.integers(60, 300))
        while len(doc) < want:
            doc += sp.encode(phrases[int(rng.integers(0, len(phrases)))] + " " + " ".join(_words(rng, 2)))
        out += doc
    return np.asarray(out[:n], dtype=np.int64)


def write_shard(path: Path, tokens: np.ndarray) -> None:
    header = np.zeros(256, dtype="<i4")
    header[:3] = (20240520, 1, tokens.size)
    with open(path, "wb") as f:
        f.write(header.tobytes())
        f.write(tokens.astype("<u2").tobytes())
