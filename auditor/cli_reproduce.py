"""Commands registered on the pgolf app by this module (filled in by its owner)."""
from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    return None
