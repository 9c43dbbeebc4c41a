"""`pgolf plot DIR`: training curves of record folders as PNG files (auditor.plot)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def plot_command(
    path: str = typer.Argument(..., help="A record folder (or a tree of them: one PNG per folder)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="PNG file for one folder, or a directory for many (default: ./<folder>.png)."),
) -> None:
    """Plot train loss and val_bpb against step and time for every seed, with the 600 s cap and the claimed score."""
    from auditor import plot
    from auditor.discover import discover

    disc = discover([path])
    for p in disc.problems:
        typer.echo(f"pgolf: {p.line()}", err=True)
    if not disc.folders:
        raise typer.Exit(2)
    many = len(disc.folders) > 1
    if many and output is not None and output.suffix.lower() == ".png":
        typer.echo(f"pgolf: {path} holds {len(disc.folders)} record folders; give -o a directory", err=True)
        raise typer.Exit(2)
    code = 0
    for folder in disc.folders:
        c = plot.curves(folder)
        for p in c.problems:
            typer.echo(f"pgolf: {folder.display}/{p}", err=True)
        if not any(s.train or s.val for s in c.series):
            typer.echo(f"pgolf: {folder.display}: no step lines with train_loss or val_bpb in its logs; nothing to plot", err=True)
            code = 2
            continue
        if output is None:
            target = Path(plot.default_name(folder))
        elif many or output.is_dir():
            target = output / plot.default_name(folder)
        else:
            target = output
        try:
            plot.render_png(c, target)
        except OSError as exc:
            typer.echo(f"pgolf: cannot write {target}: {exc.strerror or exc}", err=True)
            raise typer.Exit(2)
        typer.echo(f"{target}: {folder.display}, {len(c.series)} run(s)")
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("plot")(plot_command)
