"""pgolf's rules: one module per rule id. Importing this package registers every rule."""
from __future__ import annotations

import importlib
import pkgutil

from rules.base import Case, Invalid, Rule, Valid, register, registry

_SKIP = {"base", "analysis"}
_loaded = False


def load_all() -> dict[str, type[Rule]]:
    """Import every rule module under ``rules/`` (sub-packages too) and return the registry."""
    global _loaded
    if not _loaded:
        for mod in pkgutil.walk_packages(__path__, prefix="rules."):
            short = mod.name.split(".")[1]
            if short in _SKIP or mod.name.rsplit(".", 1)[-1].startswith("_"):
                continue
            importlib.import_module(mod.name)
        _loaded = True
    return dict(sorted(registry().items()))


def get(rule_id: str) -> type[Rule] | None:
    rules = load_all()
    key = rule_id.strip().upper()
    if key in rules:
        return rules[key]
    for r in rules.values():
        if r.code.upper() == key:
            return r
    return None


__all__ = ["Case", "Invalid", "Rule", "Valid", "register", "registry", "load_all", "get"]
