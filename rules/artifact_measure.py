"""What the ARTIFACT-* rules share: the cap, the byte figures the measure step made
(``auditor.measure_bytes``), and how a byte count is written. Registers no rule; reads no file."""
from __future__ import annotations

from auditor.measure_bytes import ArtifactFacts

CAP = 16_000_000


def artifact_facts(ctx) -> ArtifactFacts:
    facts = ctx.measured.artifact
    if facts is None:  # the measure step could not measure (its problem is in the report)
        raise LookupError("no artifact bytes were measured")
    return facts


def fmt(n: int | None) -> str:
    return "n/a" if n is None else f"{n:,}"
