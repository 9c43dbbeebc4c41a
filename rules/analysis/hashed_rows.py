"""Count ratios read from a hashed table for a whole vocabulary row (the PR #972 shape).

    pair_h = (ctx_h[:, None] * MULT + all_tokens[None, :]) % B   # a hashed key per (context, v)
    pair_c = ng_pair[pair_h].float()                              # a "row" of counts over v
    hit = pair_c.gather(1, y[:, None])                            # the target's count
    p = (hit + beta * p_nn) / (ctx_c + beta)                      # divided by a separately hashed count
    loss -= torch.log(p)

With hash collisions the row's entries do not sum to ``ctx_c``, so Σ_v p(v) ≠ 1 (valerio-oai on
PR #982). Dividing by the row's own sum (``pair_c.sum(-1)``) is a proper distribution and stays
clean; exact tables (no ``%``/mask/hash step in the key) are not matched at all, because there the
context count can equal the row sum and this analysis cannot tell the two apart.

The match is deliberately narrow and intra-procedural: every piece (hashed key, row read, target
gather, ratio, −log) must sit in one function, found by def-use over names.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from rules.analysis.dataflow import LOG_CALLS, NOT_TARGET, TARGET_NAME, has
from rules.analysis.facts import CodeFacts
from rules.analysis.index import FileFacts, FuncInfo, call_name
from rules.analysis.patterns import walk_own
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)

_HASH_CALL = re.compile(r"hash", re.I)
_PICK_TEXT = re.compile(r"gather|take_along|arange")
_HASH_TEXT = re.compile(r"%|&|hash", re.I)
_GATHER = {"gather", "take_along_dim", "take_along_axis"}
_CHAIN = {"float", "double", "to", "type", "squeeze", "unsqueeze", "half", "long", "int", "view", "reshape", "clone",
          "contiguous", "detach", "cpu", "cuda", "numpy", "astype"}
_SUM = {"sum", "nansum", "logsumexp"}


@dataclass
class HashedRowRatio:
    fn: FuncInfo
    ff: FileFacts
    ratio: ast.AST  # the statement that divides
    lines: list[int]  # key, row read, gather, ratio, log: the evidence


def _names(node) -> set[str]:
    return {n.id for n in ast_walk(node) if isinstance(n, ast.Name)}


def _strip(node):
    """``tbl[k].float().to(dev)`` → ``tbl[k]``."""
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _CHAIN:
        node = node.func.value
    return node


def _root(node) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_hash(node) -> bool:
    for n in ast_walk(node):
        if isinstance(n, ast.BinOp) and isinstance(n.op, (ast.Mod, ast.BitAnd)):
            return True
        if isinstance(n, ast.Call) and _HASH_CALL.search(call_name(n.func).rsplit(".", 1)[-1]):
            return True
    return False


def _vocab_wide(node, arange_names: set[str]) -> bool:
    """The key spans a vocabulary axis: a ``[None, :]`` broadcast or an ``arange`` over tokens."""
    for n in ast_walk(node):
        if isinstance(n, ast.Subscript):
            parts = n.slice.elts if isinstance(n.slice, ast.Tuple) else [n.slice]
            if any(isinstance(p, ast.Constant) and p.value is None for p in parts):
                return True
        if isinstance(n, ast.Name) and n.id in arange_names:
            return True
        if isinstance(n, ast.Call) and call_name(n.func).rsplit(".", 1)[-1] == "arange":
            return True
    return False


def _targetish(node, env) -> bool:
    for n in ast_walk(node):
        if isinstance(n, ast.Name) and (has(env.get(n.id, ()), "T")
                                         or (TARGET_NAME.match(n.id) and not NOT_TARGET.search(n.id))):
            return True
    return False


def _sums_row(node, row: str) -> bool:
    for n in ast_walk(node):
        if isinstance(n, ast.Call):
            short = call_name(n.func).rsplit(".", 1)[-1]
            if short in _SUM:
                recv = n.func.value if isinstance(n.func, ast.Attribute) and short == n.func.attr else None
                scope = [recv] if recv is not None and _root(recv) not in ("torch", "np", "numpy") else list(n.args[:1])
                if any(row in _names(s) for s in scope if s is not None):
                    return True
    return False


def find_hashed_row_ratios(facts: CodeFacts, tf) -> list[HashedRowRatio]:
    out: list[HashedRowRatio] = []
    for fn in facts.functions.values():
        ff = facts.file_of(fn)
        src = "\n".join(ff.lines[fn.node.lineno - 1:getattr(fn.node, "end_lineno", fn.node.lineno)])
        if not (_PICK_TEXT.search(src) and _HASH_TEXT.search(src)):
            continue  # the text filter: walking every function's tree costs more than reading its text
        gathers, hashes = [], False
        for n in walk_own(fn.node):
            if isinstance(n, ast.BinOp):
                hashes = hashes or isinstance(n.op, (ast.Mod, ast.BitAnd))
            elif isinstance(n, ast.Call):
                short = call_name(n.func).rsplit(".", 1)[-1]
                hashes = hashes or bool(_HASH_CALL.search(short))
                if short in _GATHER:
                    gathers.append(n)
            elif isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name) and isinstance(n.slice, ast.Tuple) \
                    and len(n.slice.elts) >= 2:
                gathers.append(n)
        if not gathers or not hashes:
            continue  # no target pick, or no hash step to build a hashed key from
        env = tf.env.get(fn.qualname, {})
        defs: dict[str, list[ast.Assign]] = {}
        stmts = []
        for n in walk_own(fn.node):
            if isinstance(n, ast.Assign):
                stmts.append(n)
                for t in n.targets:
                    for e in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t]):
                        if isinstance(e, ast.Name):
                            defs.setdefault(e.id, []).append(n)
            elif isinstance(n, ast.AugAssign):
                stmts.append(n)
        arange_names = {k for k, ds in defs.items() if any(isinstance(_strip(d.value), ast.Call)
                        and call_name(_strip(d.value).func).rsplit(".", 1)[-1] == "arange" for d in ds)}

        def hashed_key(key) -> ast.AST | None:
            """The expression (or its defining statement) that hashes this key, if vocab-wide."""
            if _is_hash(key) and _vocab_wide(key, arange_names):
                return key
            for name in _names(key):
                for d in defs.get(name, ()):
                    if _is_hash(d.value) and _vocab_wide(d.value, arange_names):
                        return d
            return None

        def row_read(name) -> tuple[ast.AST, ast.AST] | None:
            """(key, read) when ``name`` holds a table read at a hashed vocab-wide key."""
            for d in defs.get(name, ()):
                v = _strip(d.value)
                if isinstance(v, ast.Subscript):
                    k = hashed_key(v.slice)
                    if k is not None:
                        return k, d
            return None

        for g in gathers:
            src, idx = _picked(g)
            src = _strip(src) if src is not None else None
            if src is None or idx is None or not isinstance(src, ast.Name) or not _targetish(idx, env):
                continue
            rr = row_read(src.id)
            if rr is None:
                continue
            key, read = rr
            row = src.id
            gstmt = ff.parent(g)
            while gstmt is not None and not isinstance(gstmt, ast.stmt):
                gstmt = ff.parent(gstmt)
            hit = {t.id for t in getattr(gstmt, "targets", []) if isinstance(t, ast.Name)}
            ratio = _ratio_of(stmts, hit, row, defs, g)
            if ratio is None:
                continue
            stmt, derived = ratio
            log_line = _reaches_log(stmts, fn, derived, stmt)
            if log_line is None:
                continue
            lines = [getattr(key, "lineno", read.lineno), read.lineno, g.lineno, stmt.lineno, log_line]
            out.append(HashedRowRatio(fn, ff, stmt, list(dict.fromkeys(lines))))
            break
    return out


def _picked(g):
    """(row, index) of a target pick: ``row.gather(1, idx)``, ``torch.gather(row, 1, idx)``,
    ``take_along_dim(row, idx)`` or fancy indexing ``row[arange(n), idx]``."""
    if isinstance(g, ast.Subscript):
        return g.value, g.slice.elts[-1]
    short = call_name(g.func).rsplit(".", 1)[-1]
    if isinstance(g.func, ast.Attribute) and short == "gather" and _root(g.func.value) not in ("torch", "np", "numpy"):
        src, idx = g.func.value, (g.args[1] if len(g.args) > 1 else None)
    else:
        src = g.args[0] if g.args else None
        pos = 2 if short == "gather" else 1
        idx = g.args[pos] if len(g.args) > pos else None
    if idx is None:
        idx = next((k.value for k in g.keywords if k.arg in ("index", "indices")), None)
    return src, idx


def _denominator_sums_row(den, row: str, defs, depth: int = 3) -> bool:
    if _sums_row(den, row):
        return True
    if depth == 0:
        return False
    return any(_denominator_sums_row(d.value, row, defs, depth - 1) for n in _names(den) for d in defs.get(n, ()))


def _ratio_of(stmts, hit: set[str], row: str, defs, pick):
    """The statement dividing the picked count (``pick`` itself, or a name it was assigned to) by
    something that is not the row's own sum."""
    for s in stmts:
        value = s.value
        for n in ast_walk(value):
            if not (isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div)):
                continue
            inline = any(x is pick for x in ast_walk(n.left))
            if (inline or _names(n.left) & hit) and not _names(n.right) & hit \
                    and not _denominator_sums_row(n.right, row, defs):
                tgt = s.targets[0] if isinstance(s, ast.Assign) else s.target
                name = _root(tgt)
                return s, ({name} if name else set())
    return None


def _reaches_log(stmts, fn, derived: set, ratio_stmt) -> int | None:
    names = set(derived)
    for _ in range(6):  # flow-insensitive closure over the function's assignments
        grew = False
        for s in stmts:
            tgt = s.targets[0] if isinstance(s, ast.Assign) else s.target
            name = _root(tgt)
            if name and name not in names and _names(s.value) & names:
                names.add(name)
                grew = True
        if not grew:
            break
    for n in walk_own(fn.node):
        if isinstance(n, ast.Call) and call_name(n.func).rsplit(".", 1)[-1] in LOG_CALLS:
            args = list(n.args) + ([n.func.value] if isinstance(n.func, ast.Attribute) and _root(n.func.value)
                                   not in ("torch", "np", "numpy", "math") else [])
            if any(_names(a) & names for a in args) or any(
                    a is ratio_stmt.value or any(x is ratio_stmt.value for x in ast_walk(a)) for a in args):
                return n.lineno
    # the ratio itself sits inside the log: torch.log((hit + b) / (ctx_c + b))
    for n in ast_walk(ratio_stmt.value):
        if isinstance(n, ast.Call) and call_name(n.func).rsplit(".", 1)[-1] in LOG_CALLS:
            return n.lineno
    return None
