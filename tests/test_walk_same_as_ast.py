"""The analysis' fast walks visit exactly what ``ast.walk`` visits, in the same order."""
from __future__ import annotations

import ast
from pathlib import Path

from auditor.evidence.code import _walk_list
from rules.analysis.index import file_facts, walk

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SRC = '''
import os
X = int(os.environ.get("X", "3"))
class M:
    def __init__(self, v: int = 1):
        self.v, (a, *b) = v, [1, 2]
    async def f(self, *args, k=lambda q: q ** 2, **kw):
        async with g() as h:
            return [y async for y in h if (z := y)] or {k: v for k, v in kw.items()}
def g():
    try:
        yield from (i for i in range(3))
    except (ValueError, TypeError) as e:
        del e
    match X:
        case {"a": 1, **rest}:
            print(f"{rest!r:>{X}}")
'''


def _ids(it) -> list[int]:
    return [id(n) for n in it]


def test_walk_of_an_indexed_file_and_its_subtrees():
    ff = file_facts("t.py", SRC)
    assert _ids(walk(ff.tree)) == _ids(ast.walk(ff.tree)) == _ids(ff.nodes)
    for node in ff.nodes:
        assert _ids(walk(node)) == _ids(ast.walk(node)), ast.dump(node)[:80]


def test_walk_of_a_tree_nobody_indexed():
    tree = ast.parse(SRC)
    assert _ids(walk(tree)) == _ids(ast.walk(tree))
    assert _ids(_walk_list(tree)) == _ids(ast.walk(tree))


def test_walk_of_every_example_program():
    paths = sorted(EXAMPLES.rglob("*.py"))
    assert paths, EXAMPLES
    for path in paths:
        text = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        ff = file_facts(str(path), text, tree, _walk_list(tree))
        assert _ids(walk(ff.tree)) == _ids(ast.walk(ff.tree)), path
        for fn in ff.functions.values():
            assert _ids(walk(fn.node)) == _ids(ast.walk(fn.node)), (path, fn.qualname)
