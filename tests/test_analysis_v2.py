"""Eval analysis v2: the run's real configuration, values instead of names, native code read with
tree-sitter, stages the logs prove and the code lacks, transforms of a distribution. End-to-end
shapes live in tests/adversarial; these pin the engine's pieces."""
from __future__ import annotations

import textwrap

from rules import _eval_cases as cases
from rules.analysis.config import script_env
from rules.analysis.native_code import analyse_native
from tests.helpers import audit_one, write_folder

ERROR_RULES = ("EVAL", "NGRAM", "TTT", "SLOT", "ORACLE", "DATA", "NET")


def errors(tmp_path, files, rules=None):
    rec = audit_one(write_folder(tmp_path, files), **({"only_rules": set(rules)} if rules else {}))
    return sorted({(f.rule, f.line) for f in rec.findings if f.severity.value == "error" and f.rule.startswith(ERROR_RULES)})


def test_embedded_source_in_a_log_is_never_configuration(tmp_path):
    files = dict(cases.DEAD_NGRAM)
    src = files["train_gpt.py"]
    # the baseline logs its own source first: the default expression must not read as a logged value
    files["train_seed1.log"] = src + "\nCode size: 1234 bytes\n" + files["train_seed1.log"]
    assert not errors(tmp_path, files, {"NGRAM-TARGET-IN-KEY", "NGRAM-HASHED-CACHE", "EVAL-NORMALIZED-DIST"})


def test_a_shell_script_in_the_folder_is_configuration(tmp_path):
    files = {"train_gpt.py": cases.DEAD_NGRAM["train_gpt.py"], "train_seed1.log": cases.DEAD_NGRAM["train_seed1.log"],
             "run.sh": "#!/bin/bash\nexport NGRAM_EVAL=1\ntorchrun --standalone --nproc_per_node=8 train_gpt.py\n"}
    assert ("NGRAM-TARGET-IN-KEY" in {r for r, _ in errors(tmp_path, files, {"NGRAM-TARGET-IN-KEY"})})


def test_script_env_reads_exports_prefixes_defaults_and_nproc():
    env = script_env("# NGRAM_EVAL=1 (a comment)\nexport AA=1\nBB=${BB:-7} CC='x y' torchrun --nproc_per_node=4 t.py\nDD=$SEED\n")
    assert env == {"AA": "1", "BB": "7", "CC": "x y", "NPROC_PER_NODE": "4"}


def test_world_size_decides_a_guard(tmp_path):
    prog = cases.program(cases._ILLEGAL_CACHE, '''world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1:
        eval_val_ngram(model, val_tokens)
    print("final_int8_zlib_roundtrip_exact val_loss:2.0000 val_bpb:1.2000")''')
    one = "world_size:1 grad_accum_steps:8\nfinal_int8_zlib_roundtrip_exact val_loss:2.0000 val_bpb:1.2000\n"
    assert not errors(tmp_path / "a", {"train_gpt.py": prog, "train_seed1.log": one}, {"NGRAM-TARGET-IN-KEY"})
    eight = one.replace("world_size:1 grad_accum_steps:8", "world_size:8 grad_accum_steps:1")
    assert errors(tmp_path / "b", {"train_gpt.py": prog, "train_seed1.log": eight}, {"NGRAM-TARGET-IN-KEY"})


def test_the_target_by_value_whatever_its_name(tmp_path):
    # ``y`` renamed to a name no pattern knows: the target is the stream at ``pos`` next to the model's ``pos - 1``
    renamed = cases.ILLEGAL_NGRAM.replace("targets", "succ").replace("y = val_tokens[pos]", "nb = val_tokens[pos]") \
        .replace("np.arange(256), y]", "np.arange(256), nb]").replace("pos, y)", "pos, nb)")
    assert "y" not in {n for n in renamed.split() if n.strip("(),[]") == "y"}
    assert "NGRAM-TARGET-IN-KEY" in {r for r, _ in errors(tmp_path, {"train_gpt.py": renamed}, {"NGRAM-TARGET-IN-KEY"})}


C_GATE = textwrap.dedent('''
    void process(const unsigned short *tokens, long n, const unsigned char *lut, float *hint) {
        for (long i = 0; i < n; ++i) {
            unsigned short tok = tokens[i];
            unsigned char b = lut[tok];
            if (!b) {
                hint[i] = 1.0f;
            }
        }
    }
    void lookup(const long *tokens, const float *pairs, float *out, long n, long B) {
        for (long i = 0; i + 1 < n; i++) {
            long k = (tokens[i] * 1000003L + tokens[i + 1]) % B;
            out[i] = pairs[k];
        }
    }
    void absorb(const long *tokens, float *pairs, long n, long B) {
        for (long i = 0; i + 1 < n; i++) {
            pairs[(tokens[i] * 1000003L + tokens[i + 1]) % B] += 1.f;
        }
    }
''')


def test_native_reads_target_keyed_tables_and_target_gates():
    facts = analyse_native([("x.c", C_GATE, 1)], {"process": {0}})
    got = {(h.kind, h.func) for h in facts.hits}
    assert ("key", "lookup") in got  # pairs[hash(prev, tokens[i + 1])] is read
    assert ("gate", "process") in got  # Python passes the targets as ``tokens``: lut[target] decides hint[i]
    assert not any(h.func == "absorb" for h in facts.hits)  # an update keyed by the target is legal state
    # without the Python side saying ``tokens`` are the targets, tokens[i] is the context: no gate
    assert not any(h.kind == "gate" for h in analyse_native([("x.c", C_GATE, 1)], {}).hits)


def test_native_source_that_does_not_parse_is_unreadable():
    facts = analyse_native([("bad.cu", "}}}} this is not C {{{{ ))) " * 20, 1)], {})
    assert facts.unreadable and facts.unreadable[0][0] == "bad.cu"


CHUNK = '''
def eval_scaled(model, val_tokens, seq_len=8):
    nll = 0.0
    for s in range(0, len(val_tokens) - seq_len - 1, seq_len):
        seg = val_tokens[s:s + seq_len + 1]
        x, nx = seg[:-1], seg[1:]
        p = prob(model(x), nx)
        nll += float(-torch.log(p).sum())
    print(f"final_scaled_exact val_loss:{nll:.4f} val_bpb:{nll:.4f}")
    return nll
'''


def test_transforms_of_a_distribution_need_renormalizing(tmp_path):
    sharpen = cases.program(CHUNK + '''
def prob(lg, nx):
    p = F.softmax(lg, -1) ** 0.93
    return p.gather(1, nx[:, None]).squeeze(1)
''', "eval_scaled(model, val_tokens)")
    renorm = sharpen.replace("p = F.softmax(lg, -1) ** 0.93", "p = F.softmax(lg, -1) ** 0.93\n    p = p / p.sum(-1, keepdim=True)")
    assert errors(tmp_path / "a", {"train_gpt.py": sharpen}, {"EVAL-NORMALIZED-DIST"})
    assert not errors(tmp_path / "b", {"train_gpt.py": renorm}, {"EVAL-NORMALIZED-DIST"})


def test_a_stage_the_logs_prove_and_the_code_lacks(tmp_path):
    log = ("ttt:start chunks:10 epochs:3\nttt:epoch 1/3 loss:2.1\nttt:done elapsed:30s\n"
           "final_int8_zlib_roundtrip_exact val_loss:2.0000 val_bpb:1.2000\n")
    files = {"train_gpt.py": cases.SLIDING_WINDOW, "train_seed1.log": log}
    assert ("TTT-SCORE-FIRST", 1) in errors(tmp_path / "a", files, {"TTT-SCORE-FIRST"})
    # the same lines printed by the shipped code are its own stage, not evidence against it
    printed = cases.SLIDING_WINDOW + '\nprint("ttt:start chunks:10")\n'
    assert not errors(tmp_path / "b", {"train_gpt.py": printed, "train_seed1.log": log}, {"TTT-SCORE-FIRST"})
