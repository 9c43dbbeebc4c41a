"""`pgolf data build`: local text files -> a SentencePiece model (trained offline if none is
given) -> train/val shards in the challenge layout:

    OUT/datasets/<name>_sp<V>/fineweb_{train,val}_NNNNNN.bin
    OUT/tokenizers/<name>_<V>_bpe.model

One file is one document. A fixed shuffle puts the first documents in val, like the challenge's
first-50,000-documents split. The `stdlib` corpus is this Python's own standard-library sources:
every machine has it, nothing is downloaded.
"""
from __future__ import annotations

import io
import json
import os
import random
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reference_impl.data import write_shard

BOS_ID = 1
BYTE_CHECK = "bytes_check.json"
SKIP_STDLIB_DIRS = {"test", "tests", "idlelib", "site-packages", "dist-packages", "__pycache__", "lib2to3", "turtledemo"}


@dataclass
class BuildResult:
    dataset_dir: Path
    tokenizer_path: Path
    train_tokens: int
    val_tokens: int
    train_docs: int
    val_docs: int


def stdlib_files(max_bytes: int = 6_000_000) -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_STDLIB_DIRS)
        files.extend(Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py"))
    files.sort()
    random.Random(0).shuffle(files)
    out, total = [], 0
    for f in files:
        size = f.stat().st_size
        if size == 0:
            continue
        if total + size > max_bytes:
            break
        out.append(f)
        total += size
    return out


def collect_files(inputs: list[str], pattern: str) -> list[Path]:
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob(pattern) if q.is_file()))
        elif p.is_file():
            files.append(p)
        else:
            raise FileNotFoundError(f"no such file or directory: {item}")
    return files


def read_docs(files: list[Path]) -> list[str]:
    return [f.read_text(encoding="utf-8", errors="replace") for f in files]


def train_tokenizer(docs: list[str], vocab_size: int, model_path: Path, max_sentences: int = 200_000) -> None:
    """BPE with byte fallback and no whitespace normalisation, so every byte is representable
    and the byte tables count the text exactly."""
    import sentencepiece as spm

    lines = [line for d in docs for line in d.split("\n") if line.strip()]
    random.Random(1).shuffle(lines)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines[:max_sentences]), model_writer=model, vocab_size=vocab_size,
        model_type="bpe", byte_fallback=True, character_coverage=0.995, normalization_rule_name="identity",
        remove_extra_whitespaces=False, split_digits=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        max_sentence_length=8192, num_threads=2, minloglevel=2,
    )
    model_path.parent.mkdir(parents=True, exist_ok=True)
    model_path.write_bytes(model.getvalue())


def encode_docs(sp, docs: list[str]) -> np.ndarray:
    parts = []
    for ids in sp.encode(docs):
        parts.append(np.asarray([BOS_ID] + ids, dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def write_split(tokens: np.ndarray, out_dir: Path, split: str, shard_tokens: int) -> None:
    for i, start in enumerate(range(0, max(len(tokens), 1), shard_tokens)):
        write_shard(str(out_dir / f"fineweb_{split}_{i:06d}.bin"), tokens[start:start + shard_tokens])


def build(docs: list[str], out: Path, name: str, vocab_size: int, val_fraction: float = 0.1,
          tokenizer: Path | None = None, shard_tokens: int = 100_000_000, seed: int = 0) -> BuildResult:
    from reference_impl.data import load_sentencepiece

    if len(docs) < 2:
        raise ValueError("need at least two documents (one for val, one for train)")
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    n_val = min(len(docs) - 1, max(1, round(len(docs) * val_fraction)))
    val_docs = [docs[i] for i in order[:n_val]]
    train_docs = [docs[i] for i in order[n_val:]]
    tok_path = out / "tokenizers" / f"{name}_{vocab_size}_bpe.model"
    if tokenizer is None:
        train_tokenizer(train_docs, vocab_size, tok_path)
    else:
        tok_path.parent.mkdir(parents=True, exist_ok=True)
        tok_path.write_bytes(Path(tokenizer).read_bytes())
    sp = load_sentencepiece(str(tok_path))
    ds = out / "datasets" / f"{name}_sp{sp.get_piece_size()}"
    ds.mkdir(parents=True, exist_ok=True)
    for old in ds.glob("fineweb_*.bin"):
        old.unlink()
    val = encode_docs(sp, val_docs)
    train = encode_docs(sp, train_docs)
    write_split(val, ds, "val", shard_tokens)
    write_split(train, ds, "train", shard_tokens)
    check = {"val": byte_check(sp, val_docs, val), "train": byte_check(sp, train_docs, train)}
    (ds / BYTE_CHECK).write_text(json.dumps(check, indent=2) + "\n", encoding="utf-8")
    return BuildResult(ds, tok_path, len(train), len(val), len(train_docs), len(val_docs))


def byte_check(sp, docs: list[str], tokens: np.ndarray) -> dict:
    """The proof a custom tokenizer owes: the byte tables count exactly the UTF-8 bytes of the
    documents, and decoding the ids gives the documents back byte for byte."""
    from reference_impl.data import byte_tables, target_bytes

    tables = byte_tables(sp, sp.get_piece_size())
    counted = int(target_bytes(tokens[:-1], tokens[1:], tables).sum()) if len(tokens) > 1 else 0
    return {"docs": len(docs), "utf8_bytes": sum(len(d.encode("utf-8")) for d in docs), "table_bytes": counted,
            "decode_exact_docs": sum(sp.decode(ids) == d for ids, d in zip(sp.encode(docs), docs))}
