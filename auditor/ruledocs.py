"""Rule documentation: `pgolf rules`, `pgolf rule ID`, docs/rules.md. PLACEHOLDER (CI work)."""
from __future__ import annotations


def list_rules(fmt: str = "text") -> str:
    import rules

    return "".join(f"{r.code:6} {rid:28} {r.title}\n" for rid, r in rules.load_all().items())


def rule_doc(rule_id: str) -> str | None:
    import rules

    r = rules.get(rule_id)
    if r is None:
        return None
    return f"{r.id} ({r.code}): {r.title}\n\n{r.doc()}\n"
