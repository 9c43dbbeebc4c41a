"""STATS facts: per-seed spread and Welch tests against a previous record. PLACEHOLDER (stats work)."""
from __future__ import annotations

from auditor.model import Stats


def compute(ctx) -> Stats | None:
    return None
