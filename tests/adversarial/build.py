"""Regenerate the adversarial record folders and their manifest.

    python -m tests.adversarial.build          # rewrites tests/adversarial/records and manifest.toml

The folders are committed; this script is how they were written (and how to change them without
editing 60 copies of the scaffold by hand). Every case is our own code.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from tests.adversarial.cases_config import C7, C8, C9
from tests.adversarial.cases_legal import CASES as LEGAL
from tests.adversarial.cases_stages import C5, C6
from tests.adversarial.cases_target import CASES as C4
from tests.adversarial.scaffold import Case, write_case

HERE = Path(__file__).resolve().parent
ALL: list[Case] = [*C4, *C5, *C6, *C7, *C8, *C9, *LEGAL]


def manifest_entry(case: Case) -> str:
    rel = f"records/{case.track}/{case.folder_name}"
    lines = [f'["{rel}"]', f'legal = {"true" if case.legal else "false"}',
             f"class = {case.klass}", f'title = "{case.title}"']
    if not case.legal:
        lines.append("rules = [" + ", ".join(f'"{r}"' for r in case.rules) + "]")
        lines.append(f'severity = "{case.severity}"')
        if case.unreadable:
            lines.append('accept = "needs-review: could not be checked"')
    return "\n".join(lines) + "\n"


def build(root: Path = HERE) -> list[Path]:
    names = [c.folder_name for c in ALL]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise SystemExit(f"duplicate case names: {sorted(dupes)}")
    shutil.rmtree(root / "records", ignore_errors=True)
    out = [write_case(root, c) for c in ALL]
    head = ("# The adversarial suite's expectations, one table per record folder (written by build.py).\n"
            "# legal: no error may be reported. Illegal: an error (or the rule's documented severity) from one\n"
            "# of `rules`; class-9 folders may instead need review with a \"could not be checked\" finding.\n\n")
    (root / "manifest.toml").write_text(head + "\n".join(manifest_entry(c) for c in ALL), encoding="utf-8")
    return out


if __name__ == "__main__":
    folders = build()
    print(f"wrote {len(folders)} folders", file=sys.stderr)
