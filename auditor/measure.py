"""Measured facts from the evidence: per-seed finals and their mean. PLACEHOLDER (parser work)."""
from __future__ import annotations

from auditor.evidence import Evidence
from auditor.model import Measured


def measure(ev: Evidence) -> Measured:
    return Measured()
