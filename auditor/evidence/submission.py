"""Tolerant reader for submission.json (records.md §2). PLACEHOLDER: to be replaced by the parser work.

Contract: ``read_claims(path, root, rel) -> Claims``. Never raises; every repair goes to
``Claims.repairs`` and everything unreadable to ``Claims.problems``.
"""
from __future__ import annotations

import json
from pathlib import Path

from auditor.fs import UnreadableFile, read_text
from auditor.model import Claims, Problem


def read_claims(path: Path, root: Path, rel: str) -> Claims:
    claims = Claims(file=rel)
    try:
        tf = read_text(path, root)
        obj = json.loads(tf.text)
    except UnreadableFile as exc:
        claims.problems.append(Problem(rel, str(exc)))
        return claims
    except ValueError as exc:
        claims.problems.append(Problem(rel, f"invalid JSON: {exc}"))
        return claims
    if isinstance(obj, dict):
        claims.raw = obj
        v = obj.get("val_bpb")
        claims.val_bpb = float(v) if isinstance(v, (int, float)) else None
    return claims
