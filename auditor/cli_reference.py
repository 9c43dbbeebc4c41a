"""`pgolf train`, `pgolf eval` and `pgolf data build|fetch`: the reference implementation's
commands. torch and reference_impl are imported inside the command functions only, so that
`pgolf audit` never imports them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer


def _err(msg: str) -> None:
    typer.echo(f"pgolf: {msg}", err=True)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pgolf" / "data"


def _spinner(what: str):
    """A spinner with the elapsed time on a terminal's stderr while one long call runs."""
    import contextlib
    import sys

    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=Console(stderr=True),
                   transient=True)
    bar.add_task(what, total=None)
    return bar


def _parse_sets(items: List[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isupper():
            raise typer.BadParameter(f"--set takes KEY=VALUE with an upper-case env name, got {item!r}")
        out[key] = value
    return out


data_app = typer.Typer(help="Build or download token shards.", no_args_is_help=True)


@data_app.command("build")
def data_build(
    inputs: List[str] = typer.Argument(None, help="Text files or directories (one file = one document)."),
    out: Path = typer.Option(None, "--out", "-o", help="Output root (datasets/ and tokenizers/ go under it). Default: ~/.cache/pgolf/data"),
    stdlib: bool = typer.Option(False, "--stdlib", help="Use this Python's standard-library sources as the corpus."),
    pattern: str = typer.Option("*.txt", "--glob", help="File pattern inside directories."),
    name: str = typer.Option("", "--name", help="Dataset name (default: stdlib or local)."),
    vocab_size: int = typer.Option(512, "--vocab-size", help="SentencePiece vocabulary to train."),
    tokenizer: Optional[Path] = typer.Option(None, "--tokenizer", help="Use this .model instead of training one."),
    val_fraction: float = typer.Option(0.1, "--val-fraction", help="Share of documents for the val split."),
    max_bytes: int = typer.Option(6_000_000, "--max-bytes", help="Cap on the stdlib corpus size."),
) -> None:
    """Tokenize local text into fineweb_{train,val}_*.bin shards, training a SentencePiece BPE model offline."""
    from reference_impl import corpus

    out = out or default_data_dir()
    try:
        if stdlib:
            files = corpus.stdlib_files(max_bytes)
        elif inputs:
            files = corpus.collect_files(list(inputs), pattern)
        else:
            _err("give input files/directories, or --stdlib")
            raise typer.Exit(2)
        with _spinner(f"building {name or ('stdlib' if stdlib else 'local')} from {len(files):,} files "
                      f"(tokenizer training, encoding, shards) under {out}"):
            res = corpus.build(corpus.read_docs(files), out, name or ("stdlib" if stdlib else "local"), vocab_size,
                               val_fraction, tokenizer)
    except (OSError, ValueError, RuntimeError) as e:
        _err(str(e))
        raise typer.Exit(1)
    typer.echo(f"dataset: {res.dataset_dir}  ({res.train_docs} train docs, {res.train_tokens:,} tokens; "
               f"{res.val_docs} val docs, {res.val_tokens:,} tokens)")
    typer.echo(f"tokenizer: {res.tokenizer_path}")


@data_app.command("fetch")
def data_fetch(
    variant: str = typer.Option("sp1024", "--variant", help="sp1024 | sp4096 | sp8192 | byte260"),
    out: Path = typer.Option(None, "--out", "-o", help="Local data root. Default: ~/.cache/pgolf/data"),
    train_shards: int = typer.Option(80, "--train-shards", help="How many train shards (of 1e8 tokens)."),
    with_docs: bool = typer.Option(False, "--with-docs", help="Also fetch docs_selected.jsonl and its manifest."),
    source: Optional[str] = typer.Option(None, "--source", help="A local directory or file:// URL laid out like the hub repo (default: Hugging Face)."),
    repo_id: str = typer.Option("willdepueoai/parameter-golf", "--repo-id", help="Hugging Face dataset repository."),
) -> None:
    """Download the official tokenised FineWeb shards and tokenizer (needs huggingface_hub and the network)."""
    from reference_impl import hub

    try:
        ds = hub.fetch(variant, out or default_data_dir(), train_shards, with_docs, source, repo_id, log=typer.echo)
    except (hub.FetchError, OSError, ValueError) as e:
        _err(str(e))
        raise typer.Exit(1)
    typer.echo(f"dataset: {ds}")


def train(
    preset: str = typer.Option("tiny", "--preset", help="tiny (CPU, minutes) | ci (seconds) | baseline (8xGPU, FineWeb) | record (baseline + legal record stack, 8xGPU)"),
    out: Path = typer.Option(..., "--out", "-o", help="Record folder to write (created)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Data root (datasets/, tokenizers/). Default: ~/.cache/pgolf/data"),
    nproc: int = typer.Option(0, "--nproc", help="Processes per run (default: the preset's)."),
    seeds: str = typer.Option("", "--seeds", help="Comma-separated seeds (default: the preset's)."),
    sets: List[str] = typer.Option([], "--set", help="Override an env setting, e.g. --set ITERATIONS=100 (repeatable)."),
    keep_artifact: bool = typer.Option(False, "--keep-artifact", help="Keep final_model.*.ptz in the folder (if under 1 MB)."),
    timeout: float = typer.Option(0, "--timeout", help="Per-seed timeout in seconds (0 = none)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live progress line."),
) -> None:
    """Train with the reference implementation and write a complete record folder."""
    from reference_impl import runner
    from reference_impl.presets import PRESETS

    try:
        overrides = _parse_sets(sets)
        seed_list = [int(s) for s in seeds.split(",") if s.strip()] if seeds else None
    except ValueError:
        _err(f"--seeds takes comma-separated whole numbers, not {seeds!r}")
        raise typer.Exit(2)
    if preset not in PRESETS:
        _err(f"unknown --preset {preset!r}; choose one of {', '.join(PRESETS)}")
        raise typer.Exit(2)
    env = {**PRESETS[preset].env, **overrides}
    progress = _train_progress(len(seed_list or PRESETS[preset].seeds), env, quiet)
    try:
        runner.train_record(preset, out, data or default_data_dir(), nproc or None, seed_list, overrides,
                            keep_artifact, timeout or None, log=_train_log(progress, out))
    except runner.RunError as e:
        progress.stop()
        _err(str(e))
        raise typer.Exit(1)
    finally:
        progress.stop()


def _number(env: dict[str, str], key: str, default: float) -> float:
    try:
        return float(env.get(key, default))
    except ValueError:
        return default


def _train_progress(n_seeds: int, env: dict[str, str], quiet: bool):
    from auditor.reproduce.progress import TrainProgress

    return TrainProgress(n_seeds, int(_number(env, "TRAIN_BATCH_TOKENS", 524288)), _number(env, "MAX_WALLCLOCK_SECONDS", 600.0),
                         quiet=quiet)


def _train_log(progress, out: Path):
    """The runner's log lines, above the live line; a seed's start points the live line at its log."""
    import re

    start = re.compile(r"^seed (\d+): torchrun ")
    done = re.compile(r"^seed \d+: val_bpb ")
    k = 0

    def log(line: str) -> None:
        nonlocal k
        progress.print(line)
        if done.match(line):
            progress.end_seed()
        m = start.match(line)
        if m and progress.active:
            k += 1
            progress.start_seed(k, int(m.group(1)), out.resolve() / f"train_seed{m.group(1)}.log")

    return log


def eval_cmd(
    artifact: Path = typer.Option(..., "--artifact", help="final_model.int8.ptz (or .int6.ptz) written by a run."),
    data_path: Path = typer.Option(..., "--data-path", help="Directory with fineweb_val_*.bin."),
    tokenizer_path: Path = typer.Option(..., "--tokenizer-path", help="SentencePiece .model."),
    log: Optional[Path] = typer.Option(None, "--log", help="A log of the run: model sizes are read from its Hyperparameters dump."),
    sets: List[str] = typer.Option([], "--set", help="Model/eval env settings, e.g. --set NUM_LAYERS=4 (repeatable)."),
    stride: int = typer.Option(0, "--stride", help="Sliding-window stride (0: non-overlapping windows)."),
    ngram: bool = typer.Option(False, "--ngram", help="Mix the model with the legal n-gram cache."),
    ngram_order: int = typer.Option(4, "--ngram-order", help="Longest n-gram (context = order - 1 tokens)."),
    ngram_chunk: int = typer.Option(256, "--ngram-chunk", help="Cache update interval in tokens (<= TRAIN_SEQ_LEN)."),
    max_tokens: int = typer.Option(0, "--max-tokens", help="Score only the first N val tokens (0 = all)."),
) -> None:
    """Evaluate a stored artifact: exact val_bpb, optionally sliding-window or with the n-gram cache."""
    from reference_impl import evaluate

    try:
        evaluate.run_eval(artifact, data_path, tokenizer_path, log, _parse_sets(sets), stride, ngram, ngram_order,
                          ngram_chunk, max_tokens, echo=typer.echo)
    except evaluate.EvalError as e:
        _err(str(e))
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("eval")(eval_cmd)
    app.add_typer(data_app, name="data")
