"""The eval-integrity rules recognise scores, optimizers, epochs, gates and phases by value (issue #12):
every program here uses names that carry no hint (no ``loss``, ``opt``, ``epoch``, ``y``, ``val``), and the
verdict must be the one the shape deserves."""
from __future__ import annotations

import ast

import pytest

from rules._eval_cases import program
from rules.analysis.patterns import optimizers
from tests.helpers import audit_one, write_folder


def findings(tmp_path, src: str, rule: str, files: dict | None = None):
    folder = write_folder(tmp_path / "rec", {"train_gpt.py": src, **(files or {})})
    rec = audit_one(folder, only_rules={rule})
    return [f for f in rec.findings if f.rule == rule and f.severity.rank >= 2]


GATE = '''

def run_a(m, s, tab, extra):
    acc = 0.0
    for i in range(0, len(s) - 257, 256):
        a = s[i:i + 256]
        b = s[i + 1:i + 257]
        d = torch.softmax(m(a), -1)
        k = tab[{idx}].float()
        mixed = (1 - 0.3 * k) * d.gather(-1, b[:, None]).squeeze(-1) + 0.3 * k * extra
        acc += -torch.log(mixed).sum()
    print(f"final_hint_exact val_loss:{{acc:.4f}} val_bpb:{{acc:.4f}}")
'''


def test_a_table_read_at_the_target_that_reaches_the_scored_probability_is_a_gate(tmp_path):
    src = program(GATE.format(idx="b"), "run_a(model, val_tokens, torch.zeros(1024), 0.5)")
    got = findings(tmp_path, src, "EVAL-CAUSAL")
    assert [f.severity.name for f in got] == ["ERROR"]
    assert "tab[b]" in got[0].message


def test_the_same_table_read_at_the_prefix_is_legal(tmp_path):
    src = program(GATE.format(idx="a"), "run_a(model, val_tokens, torch.zeros(1024), 0.5)")
    assert findings(tmp_path, src, "EVAL-CAUSAL") == []


def test_a_byte_table_read_at_the_target_feeds_only_the_byte_count(tmp_path):
    src = program('''

def run_a(m, s, lut):
    acc, nb = 0.0, 0.0
    for i in range(0, len(s) - 257, 256):
        a = s[i:i + 256]
        b = s[i + 1:i + 257]
        w = lut[b].to(torch.float64)
        acc += F.cross_entropy(m(a), b, reduction="sum")
        nb += w.sum()
    print(f"final_exact val_loss:{acc:.4f} val_bpb:{acc / nb:.4f}")
''', "run_a(model, val_tokens, torch.ones(1024))")
    assert findings(tmp_path, src, "EVAL-CAUSAL") == []


def test_a_gate_in_a_training_step_weights_the_training_loss(tmp_path):
    src = program('''

def run_a(m, s):
    acc = 0.0
    with torch.no_grad():
        for i in range(0, len(s) - 257, 256):
            acc += F.cross_entropy(m(s[i:i + 256]), s[i + 1:i + 257], reduction="sum")
    return acc


def step_b(m, o, batches, rare):
    for a, b in batches:
        k = rare[b].float().mean()
        r = F.cross_entropy(m(a), b) * k
        o.zero_grad()
        r.backward()
        o.step()
''', '''step_b(model, torch.optim.SGD(model.parameters(), lr=0.1), [], torch.ones(1024))
    z = run_a(model, val_tokens)
    print(f"final_exact val_loss:{z:.4f} val_bpb:{z:.4f}")''')
    assert findings(tmp_path, src, "EVAL-CAUSAL") == []
    assert findings(tmp_path, src, "EVAL-NORMALIZED-DIST") == []


def test_a_step_on_an_optimizer_known_by_its_constructor_before_the_score(tmp_path):
    src = program('''

def run_a(m, s, c=32768):
    u = torch.optim.SGD(m.parameters(), lr=0.01)
    acc = 0.0
    for i in range((len(s) - 1) // c):
        a = s[i * c:(i + 1) * c]
        b = s[i * c + 1:(i + 1) * c + 1]
        F.cross_entropy(m(a), b).backward()
        u.step()
        with torch.no_grad():
            acc += F.cross_entropy(m(a), b, reduction="sum")
    print(f"final_ttt_exact val_loss:{acc:.4f} val_bpb:{acc:.4f}")
''', "run_a(model, val_tokens)")
    got = findings(tmp_path, src, "TTT-SCORE-FIRST")
    assert [f.severity.name for f in got] == ["ERROR"]


@pytest.mark.parametrize("code, want", [
    ("u = torch.optim.AdamW(ps, lr=1)\nu.step()", {"u"}),
    ("w.zero_grad()\nw.step()", {"w"}),
    ("self.k = Muon(ps)\n", {".k"}),
    ("sched = torch.optim.lr_scheduler.CosineAnnealingLR(o, 10)\nsched.step()", set()),
])
def test_optimizers_by_value(code, want):
    fn = ast.parse("def f(ps, o):\n" + "\n".join("    " + ln for ln in code.split("\n")))
    assert optimizers(fn.body[0]) == want


ROUNDS = '''

def run_a(args, m, s, c=32768):
    u = torch.optim.SGD(m.parameters(), lr=args.ttt_lr)
    acc = 0.0
    n = (len(s) - 1) // c
    for r in range(3):
        for i in range(n):
            a = s[i * c:(i + 1) * c]
            b = s[i * c + 1:(i + 1) * c + 1]
            if r == 2:
                with torch.no_grad():
                    acc += F.cross_entropy(m(a), b, reduction="sum")
            u.zero_grad()
            F.cross_entropy(m(a), b).backward()
            u.step()
    print(f"legal_ttt_exact val_loss:{acc:.4f} val_bpb:{acc:.4f}")
'''


def test_rounds_over_the_whole_stream_are_epochs_whatever_the_counter_is_called(tmp_path):
    got = findings(tmp_path, program(ROUNDS, "run_a(args, model, val_tokens)"), "TTT-MULTI-EPOCH")
    assert [f.severity.name for f in got] == ["ERROR"]
    assert "for r in range(3)" in got[0].message


def test_a_counter_that_picks_the_chunk_is_not_an_epoch(tmp_path):
    src = program('''

def run_a(args, m, s, c=32768):
    u = torch.optim.SGD(m.parameters(), lr=args.ttt_lr)
    acc = 0.0
    parts = [(j * c, (j + 1) * c) for j in range((len(s) - 1) // c)]
    for r in range(len(parts)):
        lo, hi = parts[r]
        for i in range(lo, hi, 1024):
            a = s[i:i + 1024]
            b = s[i + 1:i + 1025]
            with torch.no_grad():
                acc += F.cross_entropy(m(a), b, reduction="sum")
        for i in range(lo, hi, 1024):
            u.zero_grad()
            F.cross_entropy(m(s[i:i + 1024]), s[i + 1:i + 1025]).backward()
            u.step()
    print(f"legal_ttt_exact val_loss:{acc:.4f} val_bpb:{acc:.4f}")
''', "run_a(args, model, val_tokens)")
    assert findings(tmp_path, src, "TTT-MULTI-EPOCH") == []


def test_the_minimum_of_two_losses_by_value_feeds_the_score(tmp_path):
    src = program('''

def run_a(m, other, s):
    acc = 0.0
    for i in range(0, len(s) - 257, 256):
        a = s[i:i + 256]
        b = s[i + 1:i + 257]
        u = F.cross_entropy(m(a), b, reduction="none")
        v = other(a, b)
        acc += torch.minimum(u, v).sum()
    print(f"final_mix_exact val_loss:{acc:.4f} val_bpb:{acc:.4f}")
''', "run_a(model, lambda p, q: p.float(), val_tokens)")
    got = findings(tmp_path, src, "ORACLE-SELECTION")
    assert [f.severity.name for f in got] == ["ERROR"]
    assert "accumulates it into the score" in got[0].message


def test_a_slot_delta_built_by_a_helper(tmp_path):
    src = program('''

def fresh(h):
    return torch.zeros(1, h.shape[-1], requires_grad=True)


def run_a(m, s, n=1024):
    acc = 0.0
    for i in range(0, len(s) - n - 1, n):
        a = s[i:i + n]
        b = s[i + 1:i + n + 1]
        with torch.no_grad():
            h = m.hidden(a)
        d = fresh(h)
        u = torch.optim.AdamW([d], lr=0.01)
        for _ in range(8):
            u.zero_grad()
            F.cross_entropy(m.head(h + d), b).backward()
            u.step()
        with torch.no_grad():
            acc += F.cross_entropy(m.head(h + d), b, reduction="sum")
    print(f"final_slot_exact val_loss:{acc:.4f} val_bpb:{acc:.4f}")
''', "run_a(model, val_tokens)")
    got = findings(tmp_path, src, "SLOT-SCORED-REGION")
    assert [f.severity.name for f in got] == ["ERROR"]


def test_partial_sums_replaced_by_a_rescored_pass_whatever_they_are_called(tmp_path):
    src = program('''

def run_a(m, s, k):
    first, parts = 0.0, []
    for i in range(0, len(s) - 257, 256):
        u = F.cross_entropy(m(s[i:i + 256]), s[i + 1:i + 257], reduction="none")
        first += float(u.sum())
        parts.append(float(u.sum()))
    again = 0.0
    for i in range(0, k * 256, 256):
        again += float(F.cross_entropy(m(s[i:i + 256]), s[i + 1:i + 257], reduction="sum"))
    z = first - sum(parts[:k]) + again
    print(f"final_exact val_loss:{z:.4f} val_bpb:{z:.4f}")
''', "run_a(model, val_tokens, 50)")
    got = findings(tmp_path, src, "EVAL-SINGLE-PASS")
    assert got and got[0].severity.name == "ERROR"
    assert "subtracts earlier partial scores" in got[0].message


def test_a_tensor_method_handed_the_targets_is_not_a_loss(tmp_path):
    """``w = table[i:j].reshape_as(b)`` is a byte count, not the model's loss: no gate, no second score."""
    src = program('''

def run_a(m, s, lut):
    acc, nb = 0.0, 0.0
    for i in range(0, len(s) - 257, 256):
        a = s[i:i + 256]
        b = s[i + 1:i + 257]
        w = lut[i + 1:i + 257].to(torch.float64).reshape_as(b)
        acc += F.cross_entropy(m(a), b, reduction="sum")
        nb += w.sum()
    print(f"final_exact val_loss:{acc:.4f} val_bpb:{acc / nb:.4f}")
''', "run_a(model, val_tokens, torch.ones(10 ** 6))")
    for rule in ("EVAL-CAUSAL", "EVAL-SINGLE-PASS", "ORACLE-SELECTION"):
        assert findings(tmp_path / rule, src, rule) == [], rule


@pytest.mark.parametrize("guard", ["False", "FLAG"])
def test_a_branch_behind_a_code_constant_never_runs(tmp_path, guard):
    """``if False:`` / ``FLAG = False`` depend on no configuration: unreachable, not "non-default"."""
    from tests.test_analysis import facts_for

    src = "FLAG = False\n\ndef main():\n    if %s:\n        x = 1\n    return 2\n\nmain()\n" % guard
    facts = facts_for(tmp_path, src)
    ff = facts.files[0]
    node = next(n for n in ast.walk(ff.tree) if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "x")
    assert facts.reach(node, ff).state == "unreachable"


_ADAPT_THEN_SCORE_INLINE = '''s = {src}
u = torch.optim.SGD(model.parameters(), lr=0.01)
for r in range(4):
    for i in range(0, len(s) - 257, 256):
        a = s[i:i + 256]
        b = s[i + 1:i + 257]
        q = F.cross_entropy(model(a), b)
        u.zero_grad()
        q.backward()
        u.step()
acc = 0.0
for i in range(0, len(val_tokens) - 257, 256):
    a = val_tokens[i:i + 256]
    b = val_tokens[i + 1:i + 257]
    with torch.no_grad():
        acc += F.cross_entropy(model(a), b, reduction="sum").item()
print(f"final_exact val_loss:{{acc:.4f}} val_bpb:{{acc:.4f}}")'''


@pytest.mark.parametrize("src, expect", [("val_tokens", ["ERROR"]), ('torch.load("fineweb_train_000000.bin")', [])])
def test_adapting_on_the_stream_before_main_scores_it_inline_is_prequant_ttt(tmp_path, src, expect):
    """Epochs of optimizer steps on the validation stream, then the same stream scored by a loop in
    ``main`` itself (no scoring helper is called): the model was tuned on the tokens it then scores.
    The same loop over training data is the legal shape."""
    body = _ADAPT_THEN_SCORE_INLINE.format(src=src).replace("\n", "\n    ")
    got = findings(tmp_path, program("", body), "TTT-PREQUANT")
    assert [f.severity.name for f in got] == expect


# -- a switch read through the program's own env helper is evaluated (PR #1013) ----------------------

from rules._eval_cases import DEAD_NGRAM  # noqa: E402

_HELPER = '''

def switch_of(key, fallback):
    raw = os.environ.get(key)
    if raw is None:
        return fallback
    return raw.strip().lower() in {"1", "true", "yes", "on"}
'''


def _helper_program(default: str) -> str:
    src = DEAD_NGRAM["train_gpt.py"]
    src = src.replace('ngram_eval = bool(int(os.environ.get("NGRAM_EVAL", "0")))',
                      f'ngram_eval = switch_of("NGRAM_EVAL", {default})')
    return src.replace("\nclass Hyperparameters:", _HELPER + "\n\nclass Hyperparameters:")


@pytest.mark.parametrize("readme", [None, "SEED=1 torchrun --nproc_per_node=8 train_gpt.py", "NGRAM_EVAL=0 torchrun train_gpt.py"])
def test_a_switch_off_through_an_env_helper_leaves_the_cache_unreachable(tmp_path, readme):
    src = _helper_program("False")
    assert "switch_of(\"NGRAM_EVAL\", False)" in src
    files = {"train_seed1.log": DEAD_NGRAM["train_seed1.log"]}
    files.update({"README.md": f"# run\n\n```\n{readme}\n```\n"} if readme else {})
    assert findings(tmp_path, src, "NGRAM-TARGET-IN-KEY", files) == []


@pytest.mark.parametrize("default,readme", [("True", None), ("False", "NGRAM_EVAL=1 torchrun train_gpt.py"),
                                            ("False", "NGRAM_EVAL=yes torchrun train_gpt.py")])
def test_a_switch_on_through_an_env_helper_keeps_the_cache(tmp_path, default, readme):
    files = {"README.md": f"# run\n\n```\n{readme}\n```\n"} if readme else {}
    got = findings(tmp_path, _helper_program(default), "NGRAM-TARGET-IN-KEY", files)
    assert [f.severity.name for f in got][:1] == ["ERROR"]


# -- a scoring function that loads the validation set itself returns a validation score (PR #694) ------------

def test_a_score_from_a_function_that_loads_the_validation_set_itself_is_a_validation_score():
    from rules._eval_common import val_score_names
    from rules.analysis.config import RunConfig
    from rules.analysis.facts import build_code_facts
    from rules.analysis.index import file_facts
    from rules.analysis.logs import LogFacts
    from rules.oracle_selection import ILLEGAL_MIN_SELF_LOADING

    facts = build_code_facts([file_facts("train_gpt.py", ILLEGAL_MIN_SELF_LOADING)], {}, RunConfig(), LogFacts())
    assert {"plain", "adapted"} <= set(val_score_names(facts, facts.functions["main"]))
