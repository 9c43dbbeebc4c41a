"""Classes 7 (logs proving a stage the shipped code lacks), 8 (configuration outside train_gpt.py)
and 9 (code that cannot be read statically)."""
from __future__ import annotations

import base64
import lzma
import zlib

from tests.adversarial.cases_target import FINAL as NG_FINAL, HP as NG_HP, NGRAM_RULES, STAGE as NG_STAGE, loop
from tests.adversarial.scaffold import Case

TTT_RULES = ("TTT-SCORE-FIRST", "TTT-MULTI-EPOCH", "TTT-PREQUANT")

# The illegal cache of class 4 in its plainest form, reused as the hidden payload of class 9.
ILLEGAL_CACHE = loop("y = window[1:]", "y", "pk = (ch * P_PAIR + y) % buckets", "pk")

C7 = [
    Case(name="TTTLogNoCode", legal=False, klass=7, title="Claimed score printed after a TTT stage the code lacks",
         rules=TTT_RULES, final_label="legal_ttt_exact",
         final='''
# the final number is the round-trip score
log0(f"legal_ttt_exact val_loss:{q_val_loss:.8f} val_bpb:{q_val_bpb:.8f}")
''',
         stage_lines=["ttt:start chunks:1893 epochs:3 lr:0.002", "ttt:epoch 1/3 loss:1.9921 elapsed:121.4s",
                      "ttt:epoch 2/3 loss:1.9420 elapsed:243.0s", "ttt:epoch 3/3 loss:1.9107 elapsed:364.8s",
                      "ttt:done elapsed:365.1s"]),
    Case(name="NgramLogNoCode", legal=False, klass=7, title="Claimed score printed after an n-gram stage the code lacks",
         rules=NGRAM_RULES, final_label="final_ngram_exact",
         final='''
log0(f"final_ngram_exact val_loss:{q_val_loss:.8f} val_bpb:{q_val_bpb:.8f}")
''',
         stage_lines=["ngram_cache:init order:7 buckets:4194304 alpha:0.40",
                      "ngram_eval:chunk 500/1893 running_bpb:0.7315", "ngram_eval:chunk 1000/1893 running_bpb:0.7122",
                      "ngram_eval:chunk 1500/1893 running_bpb:0.7010", "ngram_eval:done hits:0.612 elapsed:211.9s"]),
    Case(name="PrequantTTTLogNoCode", legal=False, klass=7,
         title="Pre-quantization adaptation on val in the logs, absent from the code",
         rules=TTT_RULES,
         prequant_lines=["prequant_ttt:start on val_tokens epochs:8 lr:0.0005",
                         "prequant_ttt:epoch 1/8 val_loss:2.0413", "prequant_ttt:epoch 4/8 val_loss:1.9655",
                         "prequant_ttt:epoch 8/8 val_loss:1.9012", "prequant_ttt:done elapsed:172.3s"]),
]

# -- class 8 ------------------------------------------------------------------------------------

NG_GATED_HP = NG_HP + '\nngram_eval = bool(int(os.environ.get("NGRAM_EVAL", "0")))'
NG_GATED_FINAL = '''
if args.ngram_eval:
    ng_loss, ng_bpb = eval_val_cached(args, base_model, device, val_tokens, luts)
    log0(f"final_ngram_exact val_loss:{ng_loss:.8f} val_bpb:{ng_bpb:.8f}")
'''

ADAPT_GATED_HP = '''pre_adapt_epochs = int(os.environ.get("PRE_ADAPT_EPOCHS", 0))
adapt_lr = float(os.environ.get("ADAPT_LR", 0.0005))'''
ADAPT_GATED_POST = '''
base_model.load_state_dict({k: v.to(base_model.state_dict()[k].dtype) for k, v in ema.items()}, strict=True)
if args.pre_adapt_epochs > 0:
    adapt = torch.optim.AdamW(base_model.parameters(), lr=args.adapt_lr)
    base_model.train()
    for ep in range(args.pre_adapt_epochs):
        for s in range(0, val_tokens.numel() - 1 - 65536, 65536):
            blk = val_tokens[s:s + 65537].to(device=device, dtype=torch.int64)
            l = base_model(blk[:-1].reshape(-1, args.train_seq_len), blk[1:].reshape(-1, args.train_seq_len))
            adapt.zero_grad(set_to_none=True)
            l.backward()
            adapt.step()
        log0(f"pre_adapt:epoch {ep + 1}/{args.pre_adapt_epochs}")
'''

TWO_PASS_HP = '''rescore_passes = int(os.environ.get("RESCORE_PASSES", 1))
mix_w = float(os.environ.get("MIX_W", 0.1))'''
TWO_PASS_DEFS = '''
def bigram_eval(args, model, device, val_tokens: Tensor, luts):
    """Exact bigram table mixed with the model; with RESCORE_PASSES=1 each chunk is scored before
    its pairs are counted."""
    V = args.vocab_size
    table = torch.zeros(V, V, device=device)
    seq_len = args.train_seq_len
    for sweep in range(args.rescore_passes):
        nll, cnt, nb = 0.0, 0, 0.0
        with torch.inference_mode():
            for s in range(0, val_tokens.numel() - 1 - seq_len, seq_len):
                seg = val_tokens[s:s + seq_len + 1].to(device=device, dtype=torch.int64)
                x, nx = seg[:-1], seg[1:]
                row = table[x] + 0.5
                p = (1 - args.mix_w) * F.softmax(model.logits(x[None]).float()[0], dim=-1) \\
                    + args.mix_w * row / row.sum(dim=-1, keepdim=True)
                nll += float(-torch.log(p.gather(1, nx[:, None]).clamp_min(1e-12)).sum())
                cnt += x.numel()
                nb += float(count_bytes(x, nx, luts))
                if sweep == 0:
                    table.index_put_((x, nx), torch.ones_like(x, dtype=table.dtype), accumulate=True)
    return nll / cnt, nll / cnt / math.log(2.0) * cnt / nb
'''
TWO_PASS_FINAL = '''
b_loss, b_bpb = bigram_eval(args, base_model, device, val_tokens, luts)
log0(f"final_bigram_exact val_loss:{b_loss:.8f} val_bpb:{b_bpb:.8f}")
'''

TTT_GATED_HP = '''ttt_epochs = int(os.environ.get("TTT_EPOCHS", 0))
ttt_lr = float(os.environ.get("TTT_LR", 0.002))
ttt_chunk = int(os.environ.get("TTT_CHUNK", 32768))'''
TTT_GATED_DEFS = '''
def chunk_adapt_eval(args, model, device, val_tokens: Tensor, luts):
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr, momentum=0.9)
    nll, cnt, nb = 0.0, 0, 0.0
    for s in range(0, val_tokens.numel() - 1 - args.ttt_chunk, args.ttt_chunk):
        blk = val_tokens[s:s + args.ttt_chunk + 1].to(device=device, dtype=torch.int64)
        xs, ys = blk[:-1].reshape(-1, args.train_seq_len), blk[1:].reshape(-1, args.train_seq_len)
        model.train()
        for _ in range(args.ttt_epochs):
            l = model(xs, ys)
            opt.zero_grad(set_to_none=True)
            l.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            nll += float(model(xs, ys)) * ys.numel()
        cnt += ys.numel()
        nb += float(count_bytes(xs.reshape(-1), ys.reshape(-1), luts))
    return nll / cnt, nll / cnt / math.log(2.0) * cnt / nb
'''
TTT_GATED_FINAL = '''
t_loss, t_bpb = chunk_adapt_eval(args, base_model, device, val_tokens, luts)
log0(f"final_ttt_exact val_loss:{t_loss:.8f} val_bpb:{t_bpb:.8f}")
'''

C8 = [
    Case(name="RunShEnablesNgram", legal=False, klass=8, title="Cache off by default, switched on by run.sh",
         rules=NGRAM_RULES, hparams=NG_GATED_HP, defs=ILLEGAL_CACHE, final=NG_GATED_FINAL, final_label="final_ngram_exact",
         extra_files={"run.sh": "#!/usr/bin/env bash\nset -euo pipefail\nexport NGRAM_EVAL=1\nexport NGRAM_ALPHA=0.35\n"
                                "for SEED in 1337 42 2025; do\n  SEED=$SEED torchrun --standalone --nproc_per_node=8 train_gpt.py"
                                " | tee train_seed$SEED.log\ndone\n"}),
    Case(name="ReadmeEnablesPreAdapt", legal=False, klass=8, title="Pre-export adaptation on val, enabled in the README command",
         rules=TTT_RULES + ("DATA-NO-VAL-IN-TRAIN",), hparams=ADAPT_GATED_HP, post_train=ADAPT_GATED_POST,
         command_env="PRE_ADAPT_EPOCHS=20",
         prequant_lines=[f"pre_adapt:epoch {i}/20" for i in range(1, 21)]),
    Case(name="RunShLinksValAsTrain", legal=False, klass=8, title="run.sh lays the val shard out as a training shard",
         rules=("DATA-NO-VAL-IN-TRAIN",),
         extra_files={"run.sh": "#!/usr/bin/env bash\nset -e\nD=./data/datasets/fineweb10B_sp1024\n"
                                "python3 data/cached_challenge_fineweb.py --variant sp1024 --train-shards 80\n"
                                "ln -sf \"$D/fineweb_val_000000.bin\" \"$D/fineweb_train_000080.bin\"\n"
                                "torchrun --standalone --nproc_per_node=8 train_gpt.py\n"}),
    Case(name="LaunchScriptTwoPasses", legal=False, klass=8, title="A launch script in scripts/ sets two rescoring passes",
         rules=("EVAL-SINGLE-PASS", "EVAL-SCORE-BEFORE-UPDATE", "EVAL-CAUSAL"), hparams=TWO_PASS_HP, defs=TWO_PASS_DEFS,
         final=TWO_PASS_FINAL, final_label="final_bigram_exact",
         extra_files={"scripts/launch_8gpu.sh": "#!/bin/bash\nexport RESCORE_PASSES=2\nexport MIX_W=0.12\n"
                                                "cd \"$(dirname \"$0\")/..\"\ntorchrun --standalone --nproc_per_node=8 train_gpt.py\n"}),
    Case(name="ReadmeCopiesValIntoTrain", legal=False, klass=8, title="README data step copies the val shard among train shards",
         rules=("DATA-NO-VAL-IN-TRAIN",),
         readme_extra="## Data\n\n```bash\npython3 data/cached_challenge_fineweb.py --variant sp1024\n"
                      "cp data/datasets/fineweb10B_sp1024/fineweb_val_000000.bin data/datasets/fineweb10B_sp1024/fineweb_train_000099.bin\n```"),
    Case(name="EvalShSetsTTTEpochs", legal=False, klass=8, title="eval.sh turns on adaptation before scoring each chunk",
         rules=TTT_RULES, hparams=TTT_GATED_HP, defs=TTT_GATED_DEFS, final=TTT_GATED_FINAL, final_label="final_ttt_exact",
         extra_files={"eval.sh": "#!/usr/bin/env bash\nTTT_EPOCHS=4 TTT_LR=0.003 torchrun --standalone --nproc_per_node=8 train_gpt.py\n"}),
]

# -- class 9 ------------------------------------------------------------------------------------

PAYLOAD = ILLEGAL_CACHE  # module-level code defining eval_val_cached; decoded, it is the class-4 shape
_B64 = base64.b64encode(PAYLOAD.encode()).decode()
_LZ85 = base64.b85encode(lzma.compress(PAYLOAD.encode())).decode()
_ZB64 = base64.b64encode(zlib.compress(PAYLOAD.encode())).decode()
_HALF = len(PAYLOAD) // 2
_PARTS = [PAYLOAD[_HALF:], PAYLOAD[:_HALF]]


def _wrap(s: str, width: int = 96) -> str:
    return "\n".join(f'    "{s[i:i + width]}"' for i in range(0, len(s), width))


def c9(name: str, title: str, defs: str, imports: str = "", extra: dict | None = None, final: str = NG_FINAL) -> Case:
    return Case(name=name, legal=False, klass=9, title=title, rules=NGRAM_RULES, unreadable=True, hparams=NG_HP,
                imports=imports, defs=defs, final=final, final_label="final_ngram_exact", stage_lines=NG_STAGE,
                extra_files=extra or {})


HELPER_MODULE = '''"""Cached evaluation helpers."""
import math

import torch
import torch.nn.functional as F
from torch import Tensor


def count_bytes(prev_ids: Tensor, tgt_ids: Tensor, luts) -> Tensor:
    base_bytes, has_space, is_boundary = luts
    nbytes = base_bytes[tgt_ids].to(torch.float64)
    nbytes += (has_space[tgt_ids] & ~is_boundary[prev_ids]).to(torch.float64)
    return nbytes.sum()
''' + PAYLOAD

CUDA_SRC = r'''
#include <torch/extension.h>

// one thread per position: the pair table is keyed by (previous token, token at i + 1)
__global__ void pair_lookup(const long* tokens, const float* ctx, const float* pairs, float* out, long n, long buckets) {
    long i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i + 1 >= n) return;
    long c = (tokens[i] * 1000003L) % buckets;
    long k = (c * 998244353L + tokens[i + 1]) % buckets;
    float seen = ctx[c];
    out[i] = seen > 0 ? fminf(pairs[k], seen) / seen : 0.f;
}

torch::Tensor lookup(torch::Tensor tokens, torch::Tensor ctx, torch::Tensor pairs) {
    auto out = torch::zeros({tokens.size(0) - 1}, ctx.options());
    long n = tokens.size(0), b = ctx.size(0);
    pair_lookup<<<(n + 255) / 256, 256>>>(tokens.data_ptr<long>(), ctx.data_ptr<float>(), pairs.data_ptr<float>(),
                                          out.data_ptr<float>(), n, b);
    return out;
}
'''

C_SRC = r'''
#include <math.h>

/* p(next | prev) from hashed tables: the key includes tokens[i + 1], the token being predicted */
void pair_probs(const long *tokens, const float *ctx, const float *pairs, float *out, long n, long buckets) {
    for (long i = 0; i + 1 < n; i++) {
        long c = (tokens[i] * 1000003L) % buckets;
        long k = (c * 998244353L + tokens[i + 1]) % buckets;
        float seen = ctx[c];
        out[i] = seen > 0 ? fminf(pairs[k], seen) / seen : 0.f;
    }
}

void absorb(const long *tokens, float *ctx, float *pairs, long n, long buckets) {
    for (long i = 0; i + 1 < n; i++) {
        long c = (tokens[i] * 1000003L) % buckets;
        ctx[c] += 1.f;
        pairs[(c * 998244353L + tokens[i + 1]) % buckets] += 1.f;
    }
}
'''

NATIVE_EVAL = '''
def native_cached_eval(args, model, device, val_tokens: Tensor, luts, lookup, absorb):
    seq_len, B = args.train_seq_len, args.ngram_buckets
    ctx_tab = torch.zeros(B, device=device)
    pair_tab = torch.zeros(B, device=device)
    nll_sum, n_tok, n_byte = 0.0, 0, 0.0
    model.eval()
    with torch.inference_mode():
        for start in range(0, val_tokens.numel() - 1 - seq_len, seq_len):
            w = val_tokens[start:start + seq_len + 1].to(device=device, dtype=torch.int64)
            p_nn = F.softmax(model.logits(w[None, :-1]).float()[0], -1).gather(1, w[1:, None]).squeeze(1)
            p_ng = lookup(w, ctx_tab, pair_tab)
            p = (1 - args.ngram_alpha) * p_nn + args.ngram_alpha * p_ng
            nll_sum += float(-torch.log(p.clamp_min(1e-12)).sum())
            absorb(w, ctx_tab, pair_tab)
            n_tok += seq_len
            n_byte += float(count_bytes(w[:-1], w[1:], luts))
    val_loss = nll_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_byte
'''

C9 = [
    c9("ExecBase64", "Evaluation helpers shipped base64-encoded", f'''
_EVAL_SRC = (
{_wrap(_B64)}
)
exec(base64.b64decode(_EVAL_SRC).decode("utf-8"))
''', imports="import base64"),
    c9("ExecJoinedParts", "Evaluation helpers assembled from reordered parts", f'''
_PARTS = {_PARTS!r}
exec("".join(reversed(_PARTS)))
'''),
    c9("AliasedImportModule", "Evaluation helpers loaded through an aliased import_module", '''
_load = importlib.import_module
_cache_mod = _load("ev" + "al_cache")
eval_val_cached = _cache_mod.eval_val_cached
''', imports="import importlib", extra={"eval_cache.py": HELPER_MODULE}),
    c9("GetattrBuiltinsExec", "Helpers run through getattr(builtins, 'ex' + 'ec')", f'''
_BLOB = (
{_wrap(_ZB64)}
)
getattr(builtins, "ex" + "ec")(zlib.decompress(base64.b64decode(_BLOB)).decode())
''', imports="import base64\nimport builtins"),
    c9("ExecWrapperOfTextFile", "A _run = exec wrapper over a shipped text file", '''
_run = exec
_run(Path(__file__).with_name("stage2.txt").read_text(encoding="utf-8"))
''', extra={"stage2.txt": PAYLOAD}),
    c9("SpecFromFileLocation", "Evaluation module loaded with spec_from_file_location", '''
_spec = importlib.util.spec_from_file_location("evalmod", Path(__file__).parent / "eval_impl.py")
_evalmod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_evalmod)
eval_val_cached = _evalmod.eval_val_cached
''', imports="import importlib.util", extra={"eval_impl.py": HELPER_MODULE}),
    c9("DunderImportAlias", "Evaluation helpers through an aliased __import__", '''
_imp = __import__
eval_val_cached = _imp("ngram_" + "mix").eval_val_cached
''', extra={"ngram_mix.py": HELPER_MODULE}),
    c9("CompileLzmaB85", "Evaluation helpers compiled from an lzma/base85 blob", f'''
_Z = (
{_wrap(_LZ85)}
)
_code = compile(lzma.decompress(base64.b85decode(_Z)), "<eval>", "exec")
eval(_code)
''', imports="import base64\nimport lzma"),
    c9("ExecFromEnv", "Evaluation hook taken from the environment", '''
exec(os.environ.get("EVAL_HOOK_SRC", "") or Path(os.environ.get("EVAL_HOOK", "hook.txt")).read_text())
''', extra={"hook.txt": PAYLOAD}),
    c9("LoadInlineCuda", "Pair lookup as an inline CUDA extension", f'''
_CUDA_SRC = r\'\'\'{CUDA_SRC}\'\'\'
_ext = load_inline(name="pair_lookup", cpp_sources="torch::Tensor lookup(torch::Tensor, torch::Tensor, torch::Tensor);",
                   cuda_sources=_CUDA_SRC, functions=["lookup"], verbose=False)


def _absorb(w: Tensor, ctx_tab: Tensor, pair_tab: Tensor) -> None:
    c = (w[:-1] * 1000003) % ctx_tab.numel()
    ctx_tab.index_add_(0, c, torch.ones_like(c, dtype=ctx_tab.dtype))
    pair_tab.index_add_(0, (c * 998244353 + w[1:]) % pair_tab.numel(), torch.ones_like(c, dtype=pair_tab.dtype))
''' + NATIVE_EVAL, imports="from torch.utils.cpp_extension import load_inline",
       final=NG_FINAL.replace("eval_val_cached(args, base_model, device, val_tokens, luts)",
                              "native_cached_eval(args, base_model, device, val_tokens, luts, _ext.lookup, _absorb)")),
    c9("CppExtensionLoad", "Pair lookup built from a shipped .cu file", '''
_ext = cpp_extension.load(name="pair_lookup", sources=[str(Path(__file__).with_name("pair_lookup.cu"))], verbose=False)


def _absorb(w: Tensor, ctx_tab: Tensor, pair_tab: Tensor) -> None:
    c = (w[:-1] * 1000003) % ctx_tab.numel()
    ctx_tab.index_add_(0, c, torch.ones_like(c, dtype=ctx_tab.dtype))
    pair_tab.index_add_(0, (c * 998244353 + w[1:]) % pair_tab.numel(), torch.ones_like(c, dtype=pair_tab.dtype))
''' + NATIVE_EVAL, imports="from torch.utils import cpp_extension", extra={"pair_lookup.cu": CUDA_SRC},
       final=NG_FINAL.replace("eval_val_cached(args, base_model, device, val_tokens, luts)",
                              "native_cached_eval(args, base_model, device, val_tokens, luts, _ext.lookup, _absorb)")),
    c9("CtypesSharedLib", "Pair probabilities from a C library loaded with ctypes", '''
_lib = ctypes.CDLL(str(Path(__file__).with_name("libpairs.so")))
_FP = ctypes.POINTER(ctypes.c_float)
_LP = ctypes.POINTER(ctypes.c_long)


def _lookup(w: Tensor, ctx_tab: Tensor, pair_tab: Tensor) -> Tensor:
    wc, cc, pc = w.cpu().contiguous(), ctx_tab.cpu().contiguous(), pair_tab.cpu().contiguous()
    out = torch.zeros(w.numel() - 1)
    _lib.pair_probs(ctypes.cast(wc.data_ptr(), _LP), ctypes.cast(cc.data_ptr(), _FP), ctypes.cast(pc.data_ptr(), _FP),
                    ctypes.cast(out.data_ptr(), _FP), ctypes.c_long(w.numel()), ctypes.c_long(ctx_tab.numel()))
    return out.to(w.device)


def _absorb(w: Tensor, ctx_tab: Tensor, pair_tab: Tensor) -> None:
    wc, cc, pc = w.cpu().contiguous(), ctx_tab.cpu().contiguous(), pair_tab.cpu().contiguous()
    _lib.absorb(ctypes.cast(wc.data_ptr(), _LP), ctypes.cast(cc.data_ptr(), _FP), ctypes.cast(pc.data_ptr(), _FP),
                ctypes.c_long(w.numel()), ctypes.c_long(ctx_tab.numel()))
    ctx_tab.copy_(cc)
    pair_tab.copy_(pc)
''' + NATIVE_EVAL, imports="import ctypes",
       extra={"pairs.c": C_SRC, "build.sh": "#!/bin/sh\ngcc -O3 -shared -fPIC -o libpairs.so pairs.c -lm\n"},
       final=NG_FINAL.replace("eval_val_cached(args, base_model, device, val_tokens, luts)",
                              "native_cached_eval(args, base_model, device, val_tokens, luts, _lookup, _absorb)")),
]
