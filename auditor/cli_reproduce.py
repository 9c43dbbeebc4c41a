"""`pgolf reproduce DIR` and `pgolf probe DIR`. Imports stay inside the commands so `pgolf audit` starts fast."""
from __future__ import annotations

from typing import List, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("reproduce")
    def reproduce_cmd(
        record: str = typer.Argument(..., help="The record folder to re-run."),
        seeds: Optional[str] = typer.Option(None, "--seeds", help="Comma-separated seeds (default: submission.json, else the logs)."),
        nproc: Optional[int] = typer.Option(None, "--nproc", help="Processes per node (default 8 on a GPU machine, else 1)."),
        nnodes: Optional[str] = typer.Option(None, "--nnodes", help="torchrun --nnodes (multi-node; replaces --standalone)."),
        rdzv_endpoint: Optional[str] = typer.Option(None, "--rdzv-endpoint", help="torchrun --rdzv-endpoint HOST:PORT."),
        rdzv_backend: str = typer.Option("c10d", "--rdzv-backend", help="torchrun --rdzv-backend."),
        env: List[str] = typer.Option([], "--env", help="NAME=VALUE added to the record's documented env (repeatable)."),
        data: Optional[str] = typer.Option(None, "--data", help="Dataset folder (fineweb_{train,val}_*.bin); sets DATA_PATH."),
        tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Tokenizer model; sets TOKENIZER_PATH."),
        run_dir: Optional[str] = typer.Option(None, "--run-dir", help="Where the copy, logs, manifest and report go."),
        timeout: Optional[float] = typer.Option(None, "--timeout", help="Wall-clock limit per seed in seconds (default 2400)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and the preflight checks, start nothing."),
        force: bool = typer.Option(False, "--force", help="Run even when preflight checks fail."),
        no_sandbox: bool = typer.Option(False, "--no-sandbox", help="Run without bubblewrap (network on, writes anywhere)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No live progress, no plan on stderr."),
        fmt: str = typer.Option("text", "--format", "-f", help="text | json | markdown | sarif | github"),
        output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the report to this file."),
        against: List[str] = typer.Option([], "--against", help="Previous record folder for the significance tests."),
        tolerance: Optional[float] = typer.Option(None, "--tolerance", help="val_bpb tolerance (default: 3σ of the claimed seeds, ≥ 0.001)."),
        probe: bool = typer.Option(False, "--probe", help="Also run the dynamic probes (pgolf probe)."),
        match_steps: Optional[bool] = typer.Option(None, "--match-steps/--no-match-steps",
                                                   help="Compare at the claimed stop step (default: on when the logs show it)."),
        replay_clock: Optional[bool] = typer.Option(None, "--replay-clock/--no-replay-clock",
                                                    help="Advance the record's clock by the claimed time per step (default: on when matching steps of a capped run)."),
        target: Optional[str] = typer.Option(None, "--target", help="Project the timing onto a named machine: 8xH100."),
    ) -> None:
        """Re-run a record with torchrun in a sandbox and compare the new logs with its claims."""
        from auditor.report import FORMATS
        from auditor.reproduce.main import ReproduceOptions, parse_env, parse_seeds, reproduce

        if fmt not in FORMATS:
            typer.echo(f"pgolf: unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}", err=True)
            raise typer.Exit(2)
        try:
            if target is not None:
                from auditor.reproduce.throughput import target as named_target

                target = named_target(target).name
            opts = ReproduceOptions(record=record, seeds=parse_seeds(seeds), nproc=nproc, nnodes=nnodes, rdzv_endpoint=rdzv_endpoint,
                                    rdzv_backend=rdzv_backend, env=parse_env(env), data=data, tokenizer=tokenizer, run_dir=run_dir,
                                    timeout_s=timeout, dry_run=dry_run, force=force, no_sandbox=no_sandbox, quiet=quiet, fmt=fmt,
                                    output=output, against=list(against), tolerance=tolerance, probe=probe,
                                    match_steps=match_steps, replay_clock=replay_clock, target=target)
        except ValueError as exc:
            typer.echo(f"pgolf: {exc}", err=True)
            raise typer.Exit(2)
        raise typer.Exit(reproduce(opts))

    @app.command("probe")
    def probe_cmd(
        record: str = typer.Argument(..., help="A record folder, or a Python file exposing score_tokens()."),
        fmt: str = typer.Option("text", "--format", "-f", help="text | json | markdown | sarif | github"),
        output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the report to this file."),
        no_sandbox: bool = typer.Option(False, "--no-sandbox", help="Run the probed code without bubblewrap."),
        timeout: float = typer.Option(300.0, "--timeout", help="Wall-clock limit for the probe child process (s)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the report."),
        function: Optional[str] = typer.Option(None, "--function", help="The scorer function (default: score_tokens)."),
        accumulator: Optional[str] = typer.Option(None, "--accumulator", help="Regex naming the loss accumulator to instrument."),
        work: Optional[str] = typer.Option(None, "--work-dir", help="Keep the instrumented copy and child logs here."),
    ) -> None:
        """Dynamic probes on tiny CPU inputs: suffix flip, final-position vocabulary sweep, score-before-update ledger."""
        from auditor.report import FORMATS
        from auditor.reproduce.probes import probe_main

        if fmt not in FORMATS:
            typer.echo(f"pgolf: unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}", err=True)
            raise typer.Exit(2)
        raise typer.Exit(probe_main(record, fmt=fmt, output=output, no_sandbox=no_sandbox, timeout_s=timeout, quiet=quiet,
                                   function=function, accumulator=accumulator, work=work))
