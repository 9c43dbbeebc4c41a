"""Suppressions (`# pgolf: allow RULE -- reason`) and reviewed waivers. PLACEHOLDER (CI work)."""
from __future__ import annotations


def apply(rec, ev, options) -> None:
    return None
