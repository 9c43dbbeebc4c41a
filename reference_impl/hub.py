"""`pgolf data fetch`: the official tokenised FineWeb from the Hugging Face dataset repo
(records.md §4.6). The manifest (`<root>/manifest.json`) names each dataset's shard counts and
tokenizer; files land in the challenge's local layout:

    OUT/datasets/fineweb10B_sp1024/fineweb_{val,train}_NNNNNN.bin
    OUT/tokenizers/fineweb_1024_bpe.model (+ .vocab)
    OUT/manifest.json

`source` is either None (Hugging Face, through huggingface_hub, imported only here) or a local
directory / file:// URL laid out like the hub repository, for mirrors and tests.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

DEFAULT_REPO = os.environ.get("MATCHED_FINEWEB_REPO_ID", "willdepueoai/parameter-golf")
DEFAULT_ROOT = os.environ.get("MATCHED_FINEWEB_REMOTE_ROOT_PREFIX", "datasets")


class FetchError(RuntimeError):
    pass


def dataset_name(variant: str) -> str:
    if variant == "byte260" or (variant.startswith("sp") and variant[2:].isdigit()):
        return f"fineweb10B_{variant}"
    raise FetchError(f"unknown variant {variant!r}: expected sp<VOCAB> (sp1024, sp4096, sp8192) or byte260")


def hub_downloader(repo_id: str) -> Callable[[str], Path]:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise FetchError("huggingface_hub is not installed: pip install 'pgolf[hub]' (or pip install huggingface_hub)") from None

    def download(remote: str) -> Path:
        parent, _, fname = remote.rpartition("/")
        return Path(hf_hub_download(repo_id=repo_id, filename=fname, subfolder=parent or None, repo_type="dataset"))

    return download


def local_downloader(source: str) -> Callable[[str], Path]:
    root = Path(source[len("file://"):] if source.startswith("file://") else source)
    if not root.is_dir():
        raise FetchError(f"source {source} is not a directory")

    def download(remote: str) -> Path:
        p = root / remote
        if not p.is_file():
            raise FetchError(f"{remote} is missing from {root}")
        return p

    return download


def _place(src: Path, dest: Path) -> None:
    if dest.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    src = src.resolve(strict=True)  # the hub cache hands out symlinks into its blob store
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def _local_path(out: Path, remote: str, root: str) -> Path:
    parts = Path(remote).parts
    if root and parts[:1] == (root,):
        parts = parts[1:]
    return out.joinpath(*parts)


def fetch(variant: str, out: Path, train_shards: int = 80, with_docs: bool = False, source: str | None = None,
          repo_id: str = DEFAULT_REPO, root: str = DEFAULT_ROOT, log=print) -> Path:
    """Download one variant; returns the local dataset directory."""
    if train_shards < 0:
        raise FetchError("train_shards must be >= 0")
    download = local_downloader(source) if source else hub_downloader(repo_id)
    prefix = f"{root}/" if root else ""

    def get(remote: str) -> Path:
        dest = _local_path(out, remote, root)
        _place(download(remote), dest)
        return dest

    manifest = json.loads(get(f"{prefix}manifest.json").read_text(encoding="utf-8"))
    name = dataset_name(variant)
    entry = next((d for d in manifest.get("datasets", []) if d.get("name") == name), None)
    if entry is None:
        raise FetchError(f"dataset {name} is not in {prefix}manifest.json")
    stats = entry.get("stats") or {}
    n_train, n_val = int(stats.get("files_train", 0)), int(stats.get("files_val", 0))
    if train_shards > n_train:
        raise FetchError(f"{variant} has {n_train} train shards, {train_shards} requested")
    tok = next((t for t in manifest.get("tokenizers", []) if t.get("name") == entry.get("tokenizer_name")), None)
    if tok is None:
        raise FetchError(f"tokenizer {entry.get('tokenizer_name')!r} is not in {prefix}manifest.json")
    tok_files = [str(tok[k]) for k in ("model_path", "vocab_path", "path") if tok.get(k)]
    if not tok_files:
        raise FetchError(f"tokenizer entry {tok.get('name')!r} lists no files")
    if with_docs:
        get(f"{prefix}docs_selected.jsonl")
        get(f"{prefix}docs_selected.source_manifest.json")
    for split, n in (("val", n_val), ("train", train_shards)):
        for i in range(n):
            get(f"{prefix}datasets/{name}/fineweb_{split}_{i:06d}.bin")
        log(f"{name}: {n} {split} shards")
    for f in tok_files:
        log(f"tokenizer: {get(prefix + f)}")
    return out / "datasets" / name
