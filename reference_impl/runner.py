"""`pgolf train`: make or find the data, generate train_gpt.py into the record folder, run it
once per seed with torchrun from inside that folder, and write README.md and submission.json."""
from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path

from reference_impl import corpus
from reference_impl.export import ExportError, RecordInfo, run_seed, write_record, write_script
from reference_impl.presets import PRESETS, Preset


class RunError(RuntimeError):
    pass


def stdlib_dataset_name(p: Preset) -> str:
    return "stdlib" if p.corpus_bytes == 6_000_000 else f"stdlib{p.corpus_bytes // 1000}k"


def prepare_data(p: Preset, data: Path, log=print) -> tuple[Path, Path, list[str]]:
    """(dataset dir, tokenizer, commands that make them) for a preset."""
    if p.corpus == "fineweb":
        ds = data / "datasets" / f"fineweb10B_sp{p.vocab_size}"
        tok = data / "tokenizers" / f"fineweb_{p.vocab_size}_bpe.model"
        if not tok.is_file() or not any(ds.glob("fineweb_val_*.bin")):
            raise RunError(f"no FineWeb sp{p.vocab_size} data under {data}: run `pgolf data fetch --variant sp{p.vocab_size} --out {data}`")
        return ds, tok, [f"pgolf data fetch --variant sp{p.vocab_size} --out $PGOLF_DATA"]
    name = stdlib_dataset_name(p)
    ds = data / "datasets" / f"{name}_sp{p.vocab_size}"
    tok = data / "tokenizers" / f"{name}_{p.vocab_size}_bpe.model"
    cmd = f"pgolf data build --stdlib --name {name} --vocab-size {p.vocab_size} --max-bytes {p.corpus_bytes} --out $PGOLF_DATA"
    if not (tok.is_file() and any(ds.glob("fineweb_val_*.bin")) and any(ds.glob("fineweb_train_*.bin"))):
        t0 = time.time()
        res = corpus.build(corpus.read_docs(corpus.stdlib_files(p.corpus_bytes)), data, name, p.vocab_size)
        log(f"built {res.dataset_dir} ({res.train_tokens:,} train / {res.val_tokens:,} val tokens) and {res.tokenizer_path} "
            f"in {time.time() - t0:.1f}s (outside --out; --data chooses where)")
    return ds, tok, [cmd]


def byte_check_note(ds: Path) -> str:
    path = ds / corpus.BYTE_CHECK
    if not path.is_file():
        return ""
    v = json.loads(path.read_text(encoding="utf-8"))["val"]
    same = "=" if v["table_bytes"] == v["utf8_bytes"] else "!="
    return (f"Byte accounting (custom tokenizer): on the val split the byte tables count {v['table_bytes']:,} bytes {same} "
            f"the UTF-8 size of the {v['docs']} val documents ({v['utf8_bytes']:,} bytes), and decode(ids) reproduces "
            f"{v['decode_exact_docs']} of {v['docs']} val documents byte for byte (checked by `pgolf data build`, "
            f"`{ds.name}/{corpus.BYTE_CHECK}`).")


def hardware(nproc: int) -> str:
    import torch

    if torch.cuda.is_available():
        return f"{nproc}x {torch.cuda.get_device_name(0)}"
    return f"CPU ({platform.machine()}, {nproc} process{'es' if nproc > 1 else ''}, gloo)"


def _home_relative(path: Path) -> str:
    """The data root the README's commands use: the one this run used (``--data``), shown with ``~``
    when it is under the home directory, so a reproducer finds the same files."""
    try:
        return "~/" + path.resolve().relative_to(Path.home().resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def record_info(preset: str, out: Path, data: Path, nproc: int, ds: Path, prelude: list[str], env: dict[str, str],
                shown: dict[str, str]) -> RecordInfo:
    p = PRESETS[preset]
    return RecordInfo(
        name=out.name,
        blurb=f"pgolf reference implementation, preset `{preset}`: {p.notes}.",
        track="10min_16mb",
        hardware=hardware(nproc),
        env=env, env_display=shown, prelude=[f"PGOLF_DATA={_home_relative(data)}", *prelude], nproc=nproc,
        byte_check=byte_check_note(ds),
    )


def train_record(preset: str, out: Path, data: Path, nproc: int | None = None, seeds: list[int] | None = None,
                 overrides: dict[str, str] | None = None, keep_artifact: bool = False, timeout_s: float | None = None,
                 log=print) -> dict:
    if preset not in PRESETS:
        raise RunError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    p = PRESETS[preset]
    nproc = nproc or p.nproc
    seeds = seeds or list(p.seeds)
    out = out.resolve()
    data = data.resolve()
    ds, tok, prelude = prepare_data(p, data, log)
    env = {"DATA_PATH": str(ds), "TOKENIZER_PATH": str(tok), **p.env, **(overrides or {})}
    shown = {"DATA_PATH": f"$PGOLF_DATA/{ds.relative_to(data)}", "TOKENIZER_PATH": f"$PGOLF_DATA/{tok.relative_to(data)}",
             **{k: v for k, v in env.items() if k not in ("DATA_PATH", "TOKENIZER_PATH")}}
    script = write_script(out)
    log(f"wrote {script} ({script.stat().st_size:,} bytes)")
    runs = []
    t_all = time.time()
    try:
        for seed in seeds:
            log(f"seed {seed}: torchrun --standalone --nproc_per_node={nproc} train_gpt.py (in {out})")
            r = run_seed(out, env, seed, nproc, timeout_s)
            uni = "" if r.unigram_bpb is None else f", unigram {r.unigram_bpb:.4f}"
            log(f"seed {seed}: val_bpb {r.val_bpb:.4f}{uni}, {r.steps} steps, train {r.train_time_ms / 1000:.1f}s, "
                f"wall {r.wall_s:.1f}s, {r.bytes_total:,} bytes")
            runs.append(r)
    except ExportError as e:
        raise RunError(str(e)) from None
    except subprocess.TimeoutExpired as e:
        raise RunError(f"a run exceeded --timeout {e.timeout}s") from None
    info = record_info(preset, out, data, nproc, ds, prelude, env, shown)
    sub = write_record(out, info, runs, keep_artifact)
    if p.corpus != "fineweb":  # our own tokenizer: ship the proof pgolf's audit re-checks
        from reference_impl import bpb_proof

        proof = bpb_proof.write(out, tok, ds)
        if proof is not None:
            log(f"wrote {proof} (byte-accounting proof of the custom tokenizer, re-checked by `pgolf audit`)")
    uni = [r.unigram_bpb for r in runs if r.unigram_bpb is not None]
    log(f"record: {out}")
    log(f"val_bpb {sub['val_bpb']:.4f} (mean of {len(runs)} seed{'s' if len(runs) != 1 else ''})"
        + (f" vs unigram {sum(uni) / len(uni):.4f} on the same split" if uni else "")
        + f"; {sub['bytes_total']:,} bytes; total wall {time.time() - t_all:.0f}s")
    return sub
