"""`pgolf data build` and `pgolf data fetch` options the other tests do not pass, each with an observable effect:
--glob (which files inside a directory are documents), --val-fraction (how many documents go to val),
--stdlib with --max-bytes (the corpus cap), --with-docs (the docs files fetched too). Real SentencePiece
training on a few kilobytes; a local folder laid out like the hub stands in for Hugging Face."""
from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from auditor.cli import app


def _docs(src, n, suffix, seed):
    rng = np.random.default_rng(seed)
    words = ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), k)) for k in rng.integers(2, 9, 200)]
    src.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (src / f"doc{i:02d}{suffix}").write_text(" ".join(rng.choice(words, 300)) + "\n", encoding="utf-8")


def _check(out, name):
    return json.loads((out / "datasets" / name / "bytes_check.json").read_text(encoding="utf-8"))


def test_glob_chooses_the_documents_and_val_fraction_the_split(tmp_path):
    src = tmp_path / "texts"
    _docs(src, 30, ".txt", 0)
    _docs(src / "notes", 8, ".md", 1)
    base = ["data", "build", str(src), "--vocab-size", "300", "--name", "toy"]
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "txt")])
    assert res.exit_code == 0, res.output
    check = _check(tmp_path / "txt", "toy_sp300")
    assert (check["train"]["docs"], check["val"]["docs"]) == (27, 3)  # the default *.txt; 10 % of 30 to val
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "md"), "--glob", "*.md", "--val-fraction", "0.5"])
    assert res.exit_code == 0, res.output
    check = _check(tmp_path / "md", "toy_sp300")
    assert (check["train"]["docs"], check["val"]["docs"]) == (4, 4)  # only the 8 notes; half of them to val


def test_stdlib_corpus_is_capped_by_max_bytes(tmp_path):
    from reference_impl.corpus import stdlib_files

    res = CliRunner().invoke(app, ["data", "build", "--stdlib", "--max-bytes", "150000", "--vocab-size", "512",
                                   "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    check = _check(tmp_path / "out", "stdlib_sp512")
    files = stdlib_files(150_000)
    assert check["train"]["docs"] + check["val"]["docs"] == len(files) >= 2
    assert sum(f.stat().st_size for f in files) <= 150_000


def test_with_docs_fetches_the_documents_file_and_its_manifest(tmp_path):
    from reference_impl.data import write_shard

    hub = tmp_path / "hub"
    (hub / "datasets" / "datasets" / "fineweb10B_sp1024").mkdir(parents=True)
    write_shard(str(hub / "datasets" / "datasets" / "fineweb10B_sp1024" / "fineweb_val_000000.bin"), [1, 2, 3])
    (hub / "datasets" / "tokenizers").mkdir()
    (hub / "datasets" / "tokenizers" / "fineweb_1024_bpe.model").write_bytes(b"model")
    manifest = {"datasets": [{"name": "fineweb10B_sp1024", "tokenizer_name": "sp_bpe_1024", "stats": {"files_train": 0, "files_val": 1}}],
                "tokenizers": [{"name": "sp_bpe_1024", "model_path": "tokenizers/fineweb_1024_bpe.model"}]}
    (hub / "datasets" / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (hub / "datasets" / "docs_selected.jsonl").write_text('{"text": "a"}\n', encoding="utf-8")
    (hub / "datasets" / "docs_selected.source_manifest.json").write_text("{}\n", encoding="utf-8")
    for flag, want in (([], False), (["--with-docs"], True)):
        out = tmp_path / f"data{len(flag)}"
        res = CliRunner().invoke(app, ["data", "fetch", "--train-shards", "0", "--out", str(out), "--source", str(hub), *flag])
        assert res.exit_code == 0, res.output
        assert (out / "docs_selected.jsonl").is_file() is want
        assert (out / "docs_selected.source_manifest.json").is_file() is want
