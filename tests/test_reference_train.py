"""End to end: `pgolf train --preset ci` runs the generated train_gpt.py under torchrun with two
gloo processes and writes a record folder whose logs parse like real records; the script is
self-contained; `pgolf eval` re-scores the stored artifact; `pgolf data build|fetch` work offline."""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from auditor.cli import app
from reference_impl import export
from reference_impl.data import byte_tables, load_sentencepiece, load_tokens, read_shard, target_bytes
from reference_impl.presets import PRESETS

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "records" / "track_10min_16mb" / "2026-11-04_Reference_Tiny"
# records.md §3.2
STEP_TRAIN = re.compile(r"^step:(\d+)/(\d+) train_loss:([\d.]+) train_time:(\d+)ms step_avg:([\d.]+)ms$", re.M)
STEP_VAL = re.compile(r"^step:(\d+)/(\d+) val_loss:([\d.]+) val_bpb:([\d.]+) train_time:(\d+)ms step_avg:([\d.]+)ms$", re.M)
EVAL = re.compile(r"^(?:\S+\s+)?(?P<label>[A-Za-z_][\w\-. +]*?)\s+(?:stride:\d+\s+)?val_loss[:=]\s*(?P<loss>[\d.]+)[\s,]+"
                  r"val_bpb[:=]\s*(?P<bpb>[\d.]+)(?P<rest>.*)$", re.M)
STOP = re.compile(r"^stopping_early: wallclock_cap train_time:\s*(\d+)ms step:\s*(\d+)/(\d+)", re.M)


def _final(text: str) -> tuple[str, float]:
    evals = [m for m in EVAL.finditer(text) if not m.group("label").startswith("step")]
    m = evals[-1]
    return m.group("label"), float(m.group("bpb"))


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    root = tmp_path_factory.mktemp("ref")
    out = root / "records" / "track_10min_16mb" / "2026-01-01_RefCi"
    res = CliRunner().invoke(app, ["train", "--preset", "ci", "--out", str(out), "--data", str(root / "data"), "--keep-artifact",
                                   "--timeout", "240"])
    assert res.exit_code == 0, (res.output, repr(res.exception))
    return out, root / "data", res.output


def test_generated_script_is_self_contained():
    text = export.generate_script()
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mod = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
            assert not (mod or "").startswith("reference_impl"), ast.unparse(node)
    header = ast.get_docstring(tree)
    names = [n for n, _ in export.env_defaults()]
    assert len(names) > 30 and {"DATA_PATH", "TOKENIZER_PATH", "SEED", "RUN_ID", "ITERATIONS", "MAX_WALLCLOCK_SECONDS",
                                "VAL_LOSS_EVERY", "NUM_LAYERS", "MODEL_DIM"} <= set(names)
    for n in names:
        assert n in export.ENV_DOC and re.search(rf"^  {n}\s", header, re.M), n
    assert "os.environ" not in text.replace('os.environ.get(name)', "").replace('"RANK" in os.environ', "") \
        .replace('"WORLD_SIZE" in os.environ', "").replace('os.environ.get("RANK", 0)', "") \
        .replace('os.environ.get("WORLD_SIZE", 1)', "").replace('os.environ.get("LOCAL_RANK", 0)', ""), \
        "settings must come through _env only"


def test_inlined_modules_do_not_redefine_names():
    seen: dict[str, str] = {}
    for mod in export.INLINE_MODULES:
        tree = ast.parse((export.PACKAGE_DIR / f"{mod}.py").read_text())
        for node in tree.body:
            targets = []
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                targets = [node.name]
            elif isinstance(node, ast.Assign):
                targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            for name in targets:
                assert name not in seen, f"{name} defined in {seen.get(name)} and {mod}"
                seen[name] = mod


def test_record_folder(record):
    out, _, output = record
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "bpb_proof.json", "final_model.int8.ptz", "submission.json", "tokenizer", "train_gpt.py",
                     "train_seed1337.log"]
    assert out.joinpath("train_gpt.py").read_text() == export.generate_script()
    readme = out.joinpath("README.md").read_text()
    assert "torchrun --standalone --nproc_per_node=2 train_gpt.py" in readme
    assert "VOCAB_SIZE=384" in readme and "DATA_PATH=$PGOLF_DATA/datasets/stdlib400k_sp384" in readme
    assert "unigram" in output
    assert re.search(r"byte tables count ([\d,]+) bytes = the UTF-8 size of the \d+ val documents \(\1 bytes\)", readme)


def test_log_lines_parse_like_records(record):
    out, _, _ = record
    text = out.joinpath("train_seed1337.log").read_text()
    env = PRESETS["ci"].env
    iters = int(env["ITERATIONS"])
    train = STEP_TRAIN.findall(text)
    assert [int(s) for s, *_ in train] == list(range(1, iters + 1)) and all(int(m) == iters for _, m, *_ in train)
    vals = STEP_VAL.findall(text)
    assert [int(s) for s, *_ in vals] == [0, 3, 6]
    assert re.search(r"^world_size:2 grad_accum_steps:1$", text, re.M)
    assert re.search(r"^seed:1337$", text, re.M) and re.search(r"^  seed: 1337$", text, re.M)
    assert re.search(r"^Hyperparameters:$", text, re.M)
    assert re.search(r"^val_loader:shards pattern=\S+ tokens:\d+$", text, re.M)
    code = int(re.search(r"^Code size: (\d+) bytes$", text, re.M).group(1))
    assert code == len(out.joinpath("train_gpt.py").read_bytes())
    model = int(re.search(r"^Serialized model int8\+zlib: (\d+) bytes$", text, re.M).group(1))
    assert model == out.joinpath("final_model.int8.ptz").stat().st_size
    total = int(re.search(r"^Total submission size int8\+zlib: (\d+) bytes$", text, re.M).group(1))
    assert total == code + model < 16_000_000
    assert re.search(r"^final_int8_zlib_roundtrip_exact val_loss:\d+\.\d{8} val_bpb:\d+\.\d{8}$", text, re.M)
    label, bpb = _final(text)
    assert label == "final_int8_sliding_window_exact"
    sub = json.loads(out.joinpath("submission.json").read_text())
    assert sub["val_bpb"] == pytest.approx(bpb, abs=1e-8)
    assert sub["val_bpb"] == pytest.approx(statistics.fmean(r["val_bpb"] for r in sub["seed_results"].values()))
    assert sub["bytes_total"] == total and sub["bytes_code"] == code and sub["seeds"] == [1337]


def test_exported_script_alone_single_process_with_wallclock_cap(record, tmp_path):
    out, _, _ = record
    shutil.copy(out / "train_gpt.py", tmp_path / "train_gpt.py")
    log = out.joinpath("train_seed1337.log").read_text()
    dump = dict(re.findall(r"^  ([a-z0-9_]+): (.*)$", log, re.M))
    env = {**os.environ, **{k.upper(): v for k, v in dump.items()}, "RUN_ID": "solo", "ITERATIONS": "100000",
           "MAX_WALLCLOCK_SECONDS": "0.5", "VAL_LOSS_EVERY": "100000", "EVAL_STRIDE": "0", "OMP_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "train_gpt.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = (tmp_path / "logs" / "solo.txt").read_text()
    assert re.search(r"^Running PyTorch \S+", text, re.M) and re.search(r"^world_size:1 grad_accum_steps:1$", text, re.M)
    stop = STOP.search(text)
    assert stop and int(stop.group(2)) < 100000 and int(stop.group(1)) >= 500
    assert (tmp_path / "final_model.int8.ptz").is_file()
    # Float64 sums all-reduced over ranks: the untrained model scores the same with 1 or 2 processes.
    two = float(STEP_VAL.search(log).group(4))
    assert abs(float(STEP_VAL.search(text).group(4)) - two) < 2e-4
    assert _final(text)[0] == "final_int8_zlib_roundtrip_exact"


def test_eval_cli_rescores_the_artifact(record):
    out, data, _ = record
    log = out / "train_seed1337.log"
    text = log.read_text()
    ds = data / "datasets" / "stdlib400k_sp384"
    tok = data / "tokenizers" / "stdlib400k_384_bpe.model"
    common = ["eval", "--artifact", str(out / "final_model.int8.ptz"), "--data-path", str(ds), "--tokenizer-path", str(tok),
              "--log", str(log)]
    res = CliRunner().invoke(app, common)
    assert res.exit_code == 0, res.output
    want = float(re.search(r"^final_int8_zlib_roundtrip_exact val_loss:\S+ val_bpb:(\S+)", text, re.M).group(1))
    got = float(re.search(r"eval_roundtrip val_loss:\S+ val_bpb:(\S+)", res.output).group(1))
    assert got == pytest.approx(want, abs=1e-6)
    res = CliRunner().invoke(app, common + ["--stride", "32"])
    want = float(re.search(r"^final_int8_sliding_window_exact val_loss:\S+ val_bpb:(\S+)", text, re.M).group(1))
    assert float(re.search(r"stride:32 val_loss:\S+ val_bpb:(\S+)", res.output).group(1)) == pytest.approx(want, abs=1e-6)
    res = CliRunner().invoke(app, common + ["--ngram", "--ngram-chunk", "64", "--max-tokens", "1025"])
    assert res.exit_code == 0, res.output
    plain = float(re.search(r"eval_roundtrip val_loss:\S+ val_bpb:(\S+)", res.output).group(1))
    alone = float(re.search(r"model_only_exact val_loss:\S+ val_bpb:(\S+)", res.output).group(1))
    assert alone == pytest.approx(plain, abs=1e-6)  # chunk == window: the same windows as the plain eval
    assert re.search(r"ngram_eval_exact val_loss:\S+ val_bpb:\S+", res.output)
    bad = CliRunner().invoke(app, ["eval", "--artifact", str(out / "missing.ptz"), "--data-path", str(ds), "--tokenizer-path", str(tok)])
    assert bad.exit_code == 1 and "missing.ptz" in bad.output


def test_audit_finds_no_format_errors(record):
    out, _, _ = record
    res = CliRunner().invoke(app, ["audit", "--format", "json", "--fail-on", "never", str(out)])
    report = json.loads(res.output)
    errors = [(f["rule"], f["message"]) for r in report["records"] for f in r["findings"] if f["severity"] == "error"]
    # One seed is too few for a record (STATS-*); everything else must be clean.
    assert [e for e in errors if not e[0].startswith("STATS-")] == []


@pytest.mark.skipif(not EXAMPLE.is_dir(), reason="example record not present")
def test_committed_example_passes_audit():
    res = CliRunner().invoke(app, ["audit", "--format", "json", "--fail-on", "never", str(EXAMPLE)])
    report = json.loads(res.output)
    errors = [(f["rule"], f["message"]) for r in report["records"] for f in r["findings"] if f["severity"] == "error"]
    assert errors == []
    assert EXAMPLE.joinpath("train_gpt.py").read_text() == export.generate_script(), "re-export the example"
    assert all(p.stat().st_size < 1_000_000 for p in EXAMPLE.rglob("*"))


def test_audit_does_not_import_torch():
    code = "import sys, auditor.cli; assert 'torch' not in sys.modules and 'reference_impl' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_data_build_cli(tmp_path):
    src = tmp_path / "texts"
    src.mkdir()
    rng = np.random.default_rng(0)
    words = "alpha beta gamma delta épsilon ζeta 東京 and or not with from into".split()
    docs = {}
    for i in range(30):
        text = " ".join(rng.choice(words, 40)) + "\n" + " ".join(rng.choice(words, 10))
        (src / f"doc{i:02d}.txt").write_text(text, encoding="utf-8")
        docs[i] = text
    res = CliRunner().invoke(app, ["data", "build", str(src), "--out", str(tmp_path / "out"), "--vocab-size", "300", "--name", "toy"])
    assert res.exit_code == 0, res.output
    ds = tmp_path / "out" / "datasets" / "toy_sp300"
    sp = load_sentencepiece(str(tmp_path / "out" / "tokenizers" / "toy_300_bpe.model"))
    tables = byte_tables(sp, 300)
    total = 0
    n_docs = 0
    for split in ("train", "val"):
        toks = load_tokens(str(ds / f"fineweb_{split}_*.bin"))
        assert toks[0] == 1
        n_docs += int((toks == 1).sum())
        total += int(target_bytes(toks[:-1], toks[1:], tables).sum())
    assert n_docs == 30
    assert total == sum(len(t.encode("utf-8")) for t in docs.values())  # exact bytes, multi-byte UTF-8 included
    check = json.loads((ds / "bytes_check.json").read_text())
    assert check["val"]["table_bytes"] == check["val"]["utf8_bytes"] and check["val"]["decode_exact_docs"] == check["val"]["docs"]
    assert check["train"]["utf8_bytes"] + check["val"]["utf8_bytes"] == total
    bad = CliRunner().invoke(app, ["data", "build", str(tmp_path / "nope"), "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 1 and "nope" in bad.output


def _hub_dir(root: Path) -> Path:
    hub = root / "hub"
    d = hub / "datasets" / "datasets" / "fineweb10B_sp1024"
    d.mkdir(parents=True)
    from reference_impl.data import write_shard

    for name in ["fineweb_val_000000.bin", "fineweb_train_000000.bin", "fineweb_train_000001.bin"]:
        write_shard(str(d / name), [1, 2, 3, len(name)])
    t = hub / "datasets" / "tokenizers"
    t.mkdir(parents=True)
    (t / "fineweb_1024_bpe.model").write_bytes(b"model")
    (t / "fineweb_1024_bpe.vocab").write_bytes(b"vocab")
    manifest = {"datasets": [{"name": "fineweb10B_sp1024", "tokenizer_name": "sp_bpe_1024", "stats": {"files_train": 2, "files_val": 1}}],
                "tokenizers": [{"name": "sp_bpe_1024", "model_path": "tokenizers/fineweb_1024_bpe.model",
                                "vocab_path": "tokenizers/fineweb_1024_bpe.vocab"}]}
    (hub / "datasets" / "manifest.json").write_text(json.dumps(manifest))
    return hub


def test_fetch_from_a_local_hub_layout(tmp_path):
    hub = _hub_dir(tmp_path)
    out = tmp_path / "data"
    res = CliRunner().invoke(app, ["data", "fetch", "--variant", "sp1024", "--train-shards", "1", "--out", str(out),
                                   "--source", f"file://{hub}"])
    assert res.exit_code == 0, res.output
    ds = out / "datasets" / "fineweb10B_sp1024"
    assert sorted(p.name for p in ds.iterdir()) == ["fineweb_train_000000.bin", "fineweb_val_000000.bin"]
    assert read_shard(str(ds / "fineweb_val_000000.bin")).tolist() == [1, 2, 3, 22]
    assert (out / "tokenizers" / "fineweb_1024_bpe.model").read_bytes() == b"model"
    assert (out / "tokenizers" / "fineweb_1024_bpe.vocab").is_file() and (out / "manifest.json").is_file()
    too_many = CliRunner().invoke(app, ["data", "fetch", "--train-shards", "5", "--out", str(out), "--source", str(hub)])
    assert too_many.exit_code == 1 and "2 train shards" in too_many.output
    unknown = CliRunner().invoke(app, ["data", "fetch", "--variant", "sp4096", "--out", str(out), "--source", str(hub)])
    assert unknown.exit_code == 1 and "fineweb10B_sp4096" in unknown.output


def test_fetch_without_huggingface_hub_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    res = CliRunner().invoke(app, ["data", "fetch", "--out", str(tmp_path)])
    assert res.exit_code == 1 and "huggingface_hub is not installed" in res.output
