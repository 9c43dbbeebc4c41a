"""Fuzz target for the rule engine: mutated real-shaped Python (our own seed scripts, plus the rules'
own example snippets) through the whole per-folder audit. Every rule must finish on every
mutation: a rule that raises shows up as "rule X could not finish" and fails this test.

Mutations are what editing and truncation do to code: delete, duplicate, swap and re-indent lines,
rename identifiers, inject statements that static analysis finds awkward. Bounded in time for CI.
"""
from __future__ import annotations

import keyword
import re
import tempfile
import textwrap
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.context import AuditOptions
from auditor.discover import discover
from auditor.pipeline import audit_folder
from tests.ci_helpers import clean_record

SEEDS_DIR = Path(__file__).parent / "fixtures" / "fuzz_scripts"
N_EXAMPLES = 600  # every one of them is checked: no time budget that silently stops checking


def _seed_scripts() -> list[str]:
    """Our seed scripts, then every Python file of every rule's VALID/INVALID cases (real-shaped code,
    found through the registry wherever a rule keeps its cases)."""
    from rules import load_all

    seeds = [p.read_text() for p in sorted(SEEDS_DIR.glob("*.py"))]
    seen = set(seeds)
    for rule in load_all().values():
        for case in [*rule.VALID, *rule.INVALID]:
            for rel, text in sorted(case.file_map().items()):
                if rel.endswith(".py") and "def " in text and text not in seen:
                    seen.add(text)
                    seeds.append(text)
    return seeds


SEEDS = _seed_scripts()
INJECT = [
    "exec(compile(src, 'x', 'exec'))", "import lzma, base64", "globals()['f'] = lambda *a: a", "del model",
    "from . import helper", "yield from range(3)", "async def f():\n    await g()", "x = [y for y in x if (z := y)]",
    "match x:\n    case [a, *b]:\n        pass", "lambda: (yield)", "nonlocal q", "return", "break", "@torch.no_grad()",
    "with torch.enable_grad():", "for _ in iter(int, 1):", "raise SystemExit", "print(f'{x!r:>{w}}')", "torch.compile(model)",
    "loss.backward()", "opt.step()", "val_tokens = train_tokens", "exec(open('other.py').read())",
    "__import__(name)", "x = " + "(" * 50 + "1" + ")" * 50, "try:\n    pass\nfinally:\n    pass", "class A(B, metaclass=M): pass",
]
_IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")


@st.composite
def mutated_script(draw) -> str:
    lines = draw(st.sampled_from(SEEDS)).split("\n")
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "indent", "dedent", "rename", "inject", "truncate"]))
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(draw(st.integers(0, len(lines))), lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "indent":
            lines[i] = "    " + lines[i]
        elif op == "dedent":
            lines[i] = lines[i][4:] if lines[i].startswith("    ") else lines[i]
        elif op == "rename":
            names = sorted({n for n in _IDENT.findall("\n".join(lines)) if not keyword.iskeyword(n)})
            if len(names) >= 2:
                a, b = draw(st.sampled_from(names)), draw(st.sampled_from(names))
                lines = [re.sub(rf"\b{re.escape(a)}\b", b, ln) for ln in lines]
        elif op == "inject":
            indent = re.match(r"\s*", lines[i]).group(0)
            lines[i:i] = [indent + ln for ln in draw(st.sampled_from(INJECT)).split("\n")]
        elif op == "truncate":
            lines = lines[:i]
    return "\n".join(lines) + "\n"


_scratch = Path(tempfile.mkdtemp(prefix="pgolf-fuzz-rules-"))
_counter = [0]


@settings(max_examples=N_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(mutated_script(), st.sampled_from(["train_gpt.py", "helper.py"]))
def _every_rule_finishes_on(script: str, where: str):
    _counter[0] += 1
    files = dict(clean_record())
    if where == "helper.py":  # the mutated code as a module the entry script imports
        files["train_gpt.py"] = "import helper\nhelper.main()\n"
    files[where] = script
    folder = _scratch / f"r{_counter[0]}" / "records" / "track_10min_16mb" / "2026-01-01_Fuzz"
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    disc = discover([folder])
    rec = audit_folder(disc.folders[0], AuditOptions())
    crashed = [p.line() for p in rec.errors if "could not finish" in p.message or "audit failed" in p.message]
    assert not crashed, "\n".join(crashed) + "\n--- script ---\n" + script


def test_every_rule_finishes_on_mutated_code():
    before = _counter[0]
    _every_rule_finishes_on()
    assert _counter[0] - before == N_EXAMPLES  # every generated example was audited, none skipped


def test_fuzz_seeds_parse_and_audit_clean_of_crashes():
    """The seeds themselves: real-shaped, parseable, and every rule finishes on them."""
    import ast

    assert len(SEEDS) >= 3
    for i, src in enumerate(SEEDS[:3]):
        ast.parse(src)
        folder = _scratch / f"seed{i}" / "records" / "track_10min_16mb" / "2026-01-01_Seed"
        folder.mkdir(parents=True)
        for rel, text in {**clean_record(), "train_gpt.py": src}.items():
            (folder / rel).write_text(text)
        rec = audit_folder(discover([folder]).folders[0], AuditOptions())
        assert not [p for p in rec.errors if "could not finish" in p.message], rec.errors
