"""Metamorphic tests: a rewrite that keeps a program's meaning must keep its verdict.

Every VALID/INVALID case of the code-reading rules (eval, ngram, ttt, slot, data, net families;
found through the rule registry) is rewritten by each transform of tests/metamorphic/rewrite.py and
by all of them together; the rule's findings at warning or above must not change. The generator
itself is checked by running small programs of our own before and after each transform.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

import rules
from tests.helpers import audit_one, write_folder
from tests.metamorphic.rewrite import TRANSFORMS, mutate

FAMILIES = {"eval", "ngram", "ttt", "slot", "data", "net"}
COMBO_SEEDS = (101, 202)
KNOWN_FILE = Path(__file__).parent / "metamorphic" / "known_variant.txt"


def load_known(path: Path = KNOWN_FILE) -> dict[str, set[str]]:
    """case id -> mutant labels whose verdict differs today (strict: a fixed one must be removed)."""
    out: dict[str, set[str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            case_id, _, label = line.partition(" :: ")
            out.setdefault(case_id.strip(), set()).add(label.strip())
    return out


KNOWN = load_known()


def rule_cases():
    for rule_id, cls in rules.load_all().items():
        if cls.family not in FAMILIES:
            continue
        for kind, cases in (("VALID", cls.VALID), ("INVALID", cls.INVALID)):
            for i, case in enumerate(cases):
                yield pytest.param(rule_id, case, id=f"{rule_id}-{kind}-{i}")


CASES = list(rule_cases())


def case_seed(case_id: str) -> int:
    return zlib.crc32(case_id.encode())


def mutants_of(files: dict[str, str], seed: int):
    """(label, files) for every transform that applies, then all transforms together."""
    for k, name in enumerate(TRANSFORMS):
        m = mutate(files, seed + k, [name])
        if m.applied:
            yield name, m
    for s in COMBO_SEEDS:
        m = mutate(files, seed + s)
        if m.applied:
            yield f"all(seed {seed + s})", m


def outcome(tmp_path, tag: str, rule_id: str, case, files: dict[str, str]):
    folder = write_folder(tmp_path / tag, files, track=case.track)
    rec = audit_one(folder, only_rules={rule_id}, **case.options)
    mine = [f for f in rec.findings if f.rule == rule_id]
    hit = any(f.severity.rank >= case.expect.rank for f in mine)
    worst: dict[str, int] = {}  # the verdict per rule: its worst severity at warning or above
    for f in rec.findings:
        if f.severity.rank >= 2:
            worst[f.rule] = max(worst.get(f.rule, 0), f.severity.rank)
    return hit, sorted(worst.items())


def test_at_least_500_mutants():
    n = sum(1 for p in CASES for _ in mutants_of(p.values[1].file_map(), case_seed(p.id)))
    assert n >= 500, n


def test_known_variant_names_real_cases():
    ids = {p.id for p in CASES}
    stale = sorted(c for c in KNOWN if c not in ids)
    assert not stale, f"known_variant.txt names cases that no longer exist: {stale}"


@pytest.mark.parametrize("rule_id,case", CASES)
def test_rule_case_invariant(tmp_path, request, rule_id, case):
    case_id = request.node.callspec.id
    files = case.file_map()
    base = outcome(tmp_path, "orig", rule_id, case, files)
    changed = {}
    for i, (label, m) in enumerate(mutants_of(files, case_seed(case_id))):
        got = outcome(tmp_path, f"m{i}", rule_id, case, m.files)
        if got != base:
            changed[label] = f"{label} [{'; '.join(m.applied)}]: {base} -> {got}"
    known = KNOWN.get(case_id, set())
    new = [changed[k] for k in changed if k not in known]
    assert not new, f"{case.note}: verdict changed under\n" + "\n".join(new)
    fixed = sorted(known - set(changed))
    assert not fixed, f"{case_id}: now invariant under {fixed}; remove them from tests/metamorphic/known_variant.txt"
    if changed:
        pytest.xfail(f"known: {len(changed)} mutant(s) change the verdict ({', '.join(changed)})")


# -- the generator keeps meaning: our own programs, run before and after -----------------------

TOY_MAIN = '''
import functools
from toy_util import scale


LIMIT = 7


def clip(v, hi):
    return v if v < hi else hi


def window_sum(xs, width, start=0):
    total = 0
    for i in range(start, len(xs) - width + 1):
        part = xs[i:i + width]
        total += sum(part) * scale(width)
    return total


class Counter:
    kind = "counter"

    def __init__(self, base):
        self.base = base
        self.seen = {}

    def bump(self, key, by=1):
        self.seen[key] = self.seen.get(key, 0) + by
        return self.seen[key] + self.base

    def peek(self, key):
        return getattr(self, "seen").get(key, -1)


def make_adder(k):
    def add(v):
        return v + k
    return add


def run(values):
    c = Counter(base=3)
    out = []
    for j, v in enumerate(values):
        d = v * 2
        w = clip(d, LIMIT)
        c.bump(w % 3, by=j)
        out.append(w)
    add5 = make_adder(5)
    twice = functools.partial(window_sum, width=2)
    squares = [add5(q) ** 2 for q in out if q % 2 == 0]
    label = f"{Counter.kind}:{c.peek(1)}"
    return out, squares, twice(out), label, sorted(c.seen.items())


def main():
    data = [4, 1, 9, 2, 6, 5, 3]
    print(run(data))
    print(window_sum(data, 3, start=1), clip(LIMIT + 1, LIMIT))


if __name__ == "__main__":
    main()
'''

TOY_UTIL = '''
def scale(width):
    return 1.0 / width
'''


def _run(tmp_path, files: dict[str, str]) -> str:
    for rel, text in files.items():
        (tmp_path / rel).write_text(text, encoding="utf-8")
    res = subprocess.run([sys.executable, "train_gpt.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.parametrize("name", [*TRANSFORMS, "all"])
def test_transform_keeps_meaning(tmp_path, name):
    files = {"train_gpt.py": textwrap.dedent(TOY_MAIN).lstrip(), "toy_util.py": textwrap.dedent(TOY_UTIL).lstrip()}
    (tmp_path / "orig").mkdir()
    want = _run(tmp_path / "orig", files)
    applied_any = False
    for seed in range(3):
        m = mutate(files, seed, None if name == "all" else [name])
        applied_any |= bool(m.applied)
        assert m.files != files or not m.applied
        d = tmp_path / f"s{seed}"
        d.mkdir()
        assert _run(d, m.files) == want, f"{name} seed {seed} changed the output: {m.applied}\n{m.files['train_gpt.py']}"
    assert applied_any, f"{name} found nothing to do in the toy program"


def test_deterministic_and_seeded():
    files = {"train_gpt.py": textwrap.dedent(TOY_MAIN).lstrip(), "toy_util.py": textwrap.dedent(TOY_UTIL).lstrip()}
    assert mutate(files, 5).files == mutate(files, 5).files
    assert mutate(files, 5).files != mutate(files, 6).files


def test_untouchable_files_are_left_alone():
    files = {"train_gpt.py": "x = 1  # pgolf: allow EVAL-CAUSAL -- reviewed\n", "notes.py": "def (:\n", "README.md": "# r\n"}
    m = mutate(files, 1)
    assert m.files == files and m.applied == []
    with pytest.raises(ValueError):
        mutate(files, 1, ["no_such_transform"])
