"""C/C++/CUDA sources a record builds at run time, read with tree-sitter for the same two shapes
the Python analysis looks for:

- a table read at a key mixed from the token being predicted (``pairs[(c * M + tokens[i + 1]) % B]``):
  NGRAM-TARGET-IN-KEY;
- a branch on a property of the predicted token (``boundary_lut[tokens[i]]`` when Python passes the
  targets as ``tokens``) that decides what is written at that position: EVAL-CAUSAL (PR #1967).

Where the predicted token comes from: an integer pointer parameter read at ``[i + 1]``, or any
parameter that Python passes a target-labelled array into (``lib.fn(ptr, targets.ctypes.data_as(…))``).
The walk is per function, in source order, with labels on local variables; writes (``t[k] += 1``)
are updates, never reads. What does not parse is returned as unreadable, never passed silently.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_INT_TYPE = re.compile(r"\b(long|int|short|char|u?int\d+_t|size_t|int64_t|int32_t|uint16_t|uint32_t|uint64_t|unsigned)\b")
_HASH_OPS = {"+", "*", "^", "%", "<<", "|", "&", "-", ">>"}
_CMP_OPS = {"==", "!=", "<", ">", "<=", ">="}


@dataclass
class NativeHit:
    file: str
    line: int  # 1-based, in ``file``
    func: str
    text: str
    kind: str  # "key" | "gate"
    extra_line: int | None = None  # the write a gate decides


@dataclass
class NativeFacts:
    hits: list[NativeHit] = field(default_factory=list)
    functions: dict[str, list[str]] = field(default_factory=dict)  # C function -> parameter names
    unreadable: list[tuple[str, int, str]] = field(default_factory=list)  # (file, line, why)
    read: list[str] = field(default_factory=list)  # sources analysed


def _parser(path: str):
    try:
        from tree_sitter import Language, Parser
    except ImportError:  # pragma: no cover - a dependency; reported as unreadable if missing
        return None
    low = path.lower()
    try:
        if low.endswith((".cu", ".cuh")):
            import tree_sitter_cuda as mod
        elif low.endswith(".c"):
            import tree_sitter_c as mod
        else:
            import tree_sitter_cpp as mod
    except ImportError:  # pragma: no cover
        return None
    return Parser(Language(mod.language()))


def _text(n) -> str:
    return n.text.decode("utf-8", "replace") if n is not None and n.text is not None else ""


def _ident_of(decl):
    """The identifier a (pointer/array/reference) declarator names, and whether it is a pointer."""
    ptr = False
    while decl is not None and decl.type != "identifier":
        if decl.type in ("pointer_declarator", "array_declarator", "reference_declarator"):
            ptr = True
        nxt = decl.child_by_field_name("declarator")
        if nxt is None:
            nxt = next((c for c in decl.named_children if c.type in ("identifier", "pointer_declarator", "array_declarator",
                                                                         "reference_declarator")), None)
        decl = nxt
    return (_text(decl), ptr) if decl is not None else (None, ptr)


class _Fn:
    def __init__(self, facts: NativeFacts, path: str, node, line0: int, target_params: set[int]):
        self.facts, self.path, self.line0 = facts, path, line0
        fd = node.child_by_field_name("declarator")
        while fd is not None and fd.type != "function_declarator":
            fd = fd.child_by_field_name("declarator")
        self.name = _text(fd.child_by_field_name("declarator")) if fd is not None else "?"
        self.params: list[str] = []
        self.int_ptrs: set[str] = set()
        self.ptrs: set[str] = set()
        plist = fd.child_by_field_name("parameters") if fd is not None else None
        for p in (plist.named_children if plist is not None else []):
            if p.type != "parameter_declaration":
                continue
            name, ptr = _ident_of(p.child_by_field_name("declarator"))
            if not name:
                continue
            self.params.append(name)
            if ptr:
                self.ptrs.add(name)
                if _INT_TYPE.search(_text(p.child_by_field_name("type"))):
                    self.int_ptrs.add(name)
        facts.functions[self.name] = list(self.params)
        self.targets = {self.params[i] for i in target_params if i < len(self.params)}
        self.env: dict[str, set[str]] = {}
        self.body = node.child_by_field_name("body")

    def line(self, n) -> int:
        return self.line0 + n.start_point[0]

    # --- expressions ---------------------------------------------------------------------
    def lab(self, n) -> set[str]:
        if n is None:
            return set()
        t = n.type
        if t == "identifier":
            return set(self.env.get(_text(n), ()))
        if t in ("number_literal", "string_literal", "char_literal", "true", "false", "null"):
            return set()
        if t == "subscript_expression":
            return self.subscript(n, write=False)
        if t == "binary_expression":
            l, r = n.child_by_field_name("left"), n.child_by_field_name("right")
            a, b = self.lab(l), self.lab(r)
            op = _text(n.child_by_field_name("operator"))
            out = (a | b) - {"P"}
            if op in _CMP_OPS:
                return {x for x in out if x in ("T", "G")}
            if op in _HASH_OPS:
                for side, other, other_node in ((a, b, r), (b, a, l)):
                    if "T" in side and "T" not in other and (other_node.type != "number_literal" or (
                            op in ("*", "^") and _text(other_node).rstrip("uUlL") not in ("0", "1"))):
                        out.add("H")
            return out
        if t == "call_expression":
            args = n.child_by_field_name("arguments")
            labs = [self.lab(a) for a in (args.named_children if args is not None else [])]
            out = set().union(*labs) if labs else set()
            if any("T" in x for x in labs) and any(x and "T" not in x for x in labs):
                out.add("H")  # a helper mixing the target with another value (``pair_key(ctx, tok)``)
            return out
        if t == "assignment_expression":
            return self.assign(n)
        out: set[str] = set()
        for c in n.named_children:
            out |= self.lab(c)
        return out

    def subscript(self, n, write: bool) -> set[str]:
        base = n.child_by_field_name("argument")
        idx_nodes = n.child_by_field_name("indices") or n.child_by_field_name("index")
        idx = [c for c in idx_nodes.named_children] if idx_nodes is not None and idx_nodes.type.endswith("list") else \
            ([idx_nodes] if idx_nodes is not None else [])
        bname = _text(base) if base is not None and base.type == "identifier" else ""
        il: set[str] = set()
        for c in idx:
            il |= self.lab(c)
        if bname in self.targets:
            return {"T"}  # Python passes the predicted tokens here: element i is the target at i
        if bname in self.int_ptrs and any(_plus_one(c) for c in idx):
            return {"T"}  # tokens[i + 1]: the token after position i, the one being predicted
        if write:
            return set()
        if "H" in il:
            self.facts.hits.append(NativeHit(self.path, self.line(n), self.name, _text(n)[:160], "key"))
            return {"K"}
        if "T" in il:
            return {"G"}  # lut[target]: a property of the predicted token
        return self.lab(base) - {"T"}

    # --- statements ----------------------------------------------------------------------
    def assign(self, n):
        left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
        lab = self.lab(right)
        if left is not None and left.type == "subscript_expression":
            self.subscript(left, write=True)  # an update of a table: never a read of it
            return lab
        if left is not None and left.type == "identifier":
            self.env.setdefault(_text(left), set()).update(lab)
        return lab

    def declare(self, n):
        for d in n.named_children:
            if d.type == "init_declarator":
                name, _ = _ident_of(d.child_by_field_name("declarator"))
                if name:
                    self.env.setdefault(name, set()).update(self.lab(d.child_by_field_name("value")))

    def walk(self, n):
        if n is None:
            return
        t = n.type
        if t == "declaration":
            self.declare(n)
            return
        if t == "expression_statement":
            for c in n.named_children:
                self.lab(c)
            return
        if t == "if_statement":
            cond = self.lab(n.child_by_field_name("condition"))
            if cond & {"G", "T"}:
                for arm in (n.child_by_field_name("consequence"), n.child_by_field_name("alternative")):
                    w = self._positional_write(arm)
                    if w is not None:
                        self.facts.hits.append(NativeHit(self.path, self.line(n), self.name, _text(n).split("\n")[0][:160],
                                                         "gate", self.line(w)))
                        break
            for c in n.named_children:
                if c is not n.child_by_field_name("condition"):
                    self.walk(c)
            return
        if t in ("function_definition", "class_specifier", "struct_specifier"):
            return
        for c in n.named_children:
            self.walk(c)

    def _positional_write(self, arm):
        """An assignment ``out[i] = …`` into an output parameter inside ``arm``."""
        if arm is None:
            return None
        todo, found = [arm], []
        while todo:
            m = todo.pop()
            if m.type == "assignment_expression":
                left = m.child_by_field_name("left")
                if left is not None and left.type == "subscript_expression":
                    base = left.child_by_field_name("argument")
                    if base is not None and _text(base) in self.ptrs:
                        found.append(m)
            todo.extend(m.named_children)
        return min(found, key=lambda m: m.start_byte) if found else None

    def run(self):
        self.walk(self.body)


def _plus_one(n) -> bool:
    if n is None or n.type != "binary_expression":
        return False
    op = _text(n.child_by_field_name("operator"))
    r = n.child_by_field_name("right")
    return op == "+" and r is not None and r.type == "number_literal" and _text(r).rstrip("uUlL") == "1"


def analyse_native(sources: list[tuple[str, str, int]], target_params: dict[str, set[int]]) -> NativeFacts:
    """``sources``: (file, text, first line of the text in that file). ``target_params``: C function
    name -> indices of parameters that receive the predicted tokens from Python."""
    facts = NativeFacts()
    for path, text, line0 in sources:
        parser = _parser(path)
        if parser is None:
            facts.unreadable.append((path, line0, "the tree-sitter C/C++/CUDA grammars are not installed"))
            continue
        try:
            tree = parser.parse(text.encode("utf-8", "replace"))
        except Exception as exc:  # pragma: no cover - tree-sitter does not raise on bad input
            facts.unreadable.append((path, line0, f"tree-sitter failed: {type(exc).__name__}"))
            continue
        root = tree.root_node
        if root.has_error:
            bad = _first_error(root)
            if bad is not None and _error_share(root) > 0.2:
                facts.unreadable.append((path, line0 + bad.start_point[0], "the source does not parse as C/C++/CUDA"))
                continue
        facts.read.append(path)
        todo = [root]
        fns = []
        while todo:
            n = todo.pop()
            if n.type == "function_definition":
                fns.append(n)
                continue
            todo.extend(n.named_children)
        for n in sorted(fns, key=lambda n: n.start_byte):
            f = _Fn(facts, path, n, line0, target_params.get(_fn_name(n), set()))
            f.run()
    return facts


def _fn_name(node) -> str:
    fd = node.child_by_field_name("declarator")
    while fd is not None and fd.type != "function_declarator":
        fd = fd.child_by_field_name("declarator")
    return _text(fd.child_by_field_name("declarator")) if fd is not None else ""


def _first_error(root):
    todo = [root]
    while todo:
        n = todo.pop(0)
        if n.type == "ERROR" or n.is_missing:
            return n
        todo.extend(n.children)
    return None


def _error_share(root) -> float:
    bad = 0
    todo = [root]
    while todo:
        n = todo.pop()
        if n.type == "ERROR":
            bad += n.end_byte - n.start_byte
            continue
        todo.extend(n.children)
    return bad / max(1, root.end_byte - root.start_byte)
