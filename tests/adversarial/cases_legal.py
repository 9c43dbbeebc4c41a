"""Legal look-alikes (classes 1-3): code that resembles a violation but does not run under the
run's configuration, runs only at training time, or is a legal shape."""
from __future__ import annotations

from tests.adversarial.cases_config import (ILLEGAL_CACHE, NG_GATED_FINAL, NG_GATED_HP, TTT_GATED_DEFS, TTT_GATED_HP,
                                            TWO_PASS_DEFS,
                                            TWO_PASS_FINAL, TWO_PASS_HP)
from tests.adversarial.cases_stages import CHUNKED
from tests.adversarial.cases_target import HP as NG_HP
from tests.adversarial.scaffold import Case


def legal(name: str, klass: int, title: str, **kw) -> Case:
    return Case(name=name, legal=True, klass=klass, title=title, **kw)


def c2_legal(name: str, title: str, fn: str, hp: str = "", label: str = "final_scaled_exact") -> Case:
    return legal(name, 3, title, hparams=hp, defs=CHUNKED + fn, final_label=label, final=f'''
c_loss, c_bpb = chunked_eval(args, base_model, device, val_tokens, luts, calibrated_prob)
log0(f"{label} val_loss:{{c_loss:.8f}} val_bpb:{{c_bpb:.8f}}")
''')


COMPLEMENTARY = '''
class ComplementGPT(GPT):
    """Complementary training: tokens a bigram table already predicts well weigh less in the loss.
    The table is filled from training batches only; evaluation uses the plain cross-entropy."""

    def __init__(self, args):
        super().__init__(args)
        self.register_buffer("bigram", torch.zeros(args.vocab_size, args.vocab_size), persistent=False)
        self.comp_alpha = args.comp_alpha

    def forward(self, input_ids: Tensor, target_ids: Tensor) -> Tensor:
        logits = self.logits(input_ids).float()
        flat_logits = logits.reshape(-1, logits.size(-1))
        flat_y = target_ids.reshape(-1)
        if self.training:
            flat_x = input_ids.reshape(-1)
            with torch.no_grad():
                self.bigram.index_put_((flat_x, flat_y), torch.ones_like(flat_y, dtype=self.bigram.dtype), accumulate=True)
                row = self.bigram[flat_x]
                p_bi = row.gather(1, flat_y[:, None]).squeeze(1) / row.sum(-1).clamp_min(1.0)
                w = 1.0 - self.comp_alpha * p_bi
            per_tok = F.cross_entropy(flat_logits, flat_y, reduction="none")
            return (w * per_tok).sum() / w.sum()
        return F.cross_entropy(flat_logits, flat_y)
'''

HASHED_TRAIN_WEIGHT = '''
class TrainNgramWeighter:
    """A hashed (context, next) counter over TRAINING batches; rare continuations get more weight."""

    def __init__(self, buckets: int, device):
        self.buckets = buckets
        self.ctx = torch.zeros(buckets, device=device)
        self.pair = torch.zeros(buckets, device=device)

    def weights(self, x: Tensor, y: Tensor) -> Tensor:
        c = (x * 1000003) % self.buckets
        k = (c * 998244353 + y) % self.buckets
        self.ctx.index_add_(0, c.reshape(-1), torch.ones(c.numel(), device=c.device))
        self.pair.index_add_(0, k.reshape(-1), torch.ones(k.numel(), device=k.device))
        freq = self.pair[k] / self.ctx[c].clamp_min(1.0)
        return 1.0 + 0.5 * (1.0 - freq)


class WeightedGPT(GPT):
    def __init__(self, args):
        super().__init__(args)
        self.weighter = None

    def forward(self, input_ids: Tensor, target_ids: Tensor) -> Tensor:
        logits = self.logits(input_ids).float()
        per_tok = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target_ids.reshape(-1), reduction="none")
        if self.training and self.weighter is not None:
            w = self.weighter.weights(input_ids, target_ids).reshape(-1)
            return (w * per_tok).sum() / w.sum()
        return per_tok.mean()
'''

EXACT_TABLE = '''
def bigram_mix_eval(args, model, device, val_tokens: Tensor, luts):
    """Exact bigram counts with add-one smoothing: (c[prev, y] + 1) / (total[prev] + V) is a proper
    distribution over the vocabulary; each window is scored before its pairs are counted."""
    V = args.vocab_size
    c = torch.zeros(V, V, dtype=torch.float64, device=device)
    total = torch.zeros(V, dtype=torch.float64, device=device)
    seq_len = args.train_seq_len
    nll, cnt, nb = 0.0, 0, 0.0
    model.eval()
    with torch.inference_mode():
        for s in range(0, val_tokens.numel() - 1 - seq_len, seq_len):
            seg = val_tokens[s:s + seq_len + 1].to(device=device, dtype=torch.int64)
            prev, y = seg[:-1], seg[1:]
            p_bi = (c[prev, y] + 1.0) / (total[prev] + V)
            p_nn = F.softmax(model.logits(prev[None]).float()[0], dim=-1).gather(1, y[:, None]).squeeze(1).double()
            p = (1 - args.mix_w) * p_nn + args.mix_w * p_bi
            nll += float(-torch.log(p).sum())
            c.index_put_((prev, y), torch.ones_like(prev, dtype=c.dtype), accumulate=True)
            total.index_add_(0, prev, torch.ones_like(prev, dtype=total.dtype))
            cnt += prev.numel()
            nb += float(count_bytes(prev, y, luts))
    return nll / cnt, nll / cnt / math.log(2.0) * cnt / nb
'''

FULL_CONTEXT_DICT = '''
def context_dict_eval(args, model, device, val_tokens: Tensor, luts):
    """Counts keyed by the full (k-token) context; the n-gram distribution is the count vector over
    the vocabulary divided by its total, interpolated with the model, so it sums to one."""
    V, k, lam = args.vocab_size, args.ctx_order, args.mix_w
    table: dict[tuple, torch.Tensor] = {}
    stream = val_tokens.tolist()
    nll, nb = 0.0, 0.0
    n = min(len(stream) - 1, args.dict_eval_tokens)
    model.eval()
    with torch.inference_mode():
        for s in range(k, n, args.train_seq_len):
            e = min(s + args.train_seq_len, n)
            seg = val_tokens[s - k:e + 1].to(device=device, dtype=torch.int64)
            probs = F.softmax(model.logits(seg[None, :-1]).float()[0], dim=-1)[k:]
            for i in range(s, e):
                key = tuple(stream[i - k + 1:i + 1])
                row = table.get(key)
                p_vec = probs[i - s]
                if row is not None:
                    p_vec = (1 - lam) * p_vec + lam * row / row.sum()
                nll -= math.log(max(float(p_vec[stream[i + 1]]), 1e-12))
            for i in range(s, e):
                key = tuple(stream[i - k + 1:i + 1])
                table.setdefault(key, torch.zeros(V, device=device))[stream[i + 1]] += 1.0
            nb += float(count_bytes(seg[k:-1], seg[k + 1:], luts))
    cnt = n - k
    return nll / cnt, nll / cnt / math.log(2.0) * cnt / nb
'''

TARGET_CTX = '''
def hashed_row_eval(args, model, device, val_tokens: Tensor, luts):
    """A hashed context table holding a whole vocabulary row per bucket, normalized by its own sum."""
    V, B = args.vocab_size, args.ctx_buckets
    rows = torch.zeros(B, V, device=device)
    seq_len = args.train_seq_len
    nll, cnt, nb = 0.0, 0, 0.0
    model.eval()
    with torch.inference_mode():
        for s in range(0, val_tokens.numel() - 1 - seq_len, seq_len):
            seg = val_tokens[s:s + seq_len + 1].to(device=device, dtype=torch.int64)
            src, tgt = seg[:-1], seg[1:]
            target_ctx = (src * 1000003) % B
            row = rows[target_ctx] + 0.05
            p_ng = row / row.sum(dim=-1, keepdim=True)
            p = (1 - args.mix_w) * F.softmax(model.logits(src[None]).float()[0], dim=-1) + args.mix_w * p_ng
            nll += float(-torch.log(p.gather(1, tgt[:, None])).sum())
            rows.index_put_((target_ctx, tgt), torch.ones_like(tgt, dtype=rows.dtype), accumulate=True)
            cnt += src.numel()
            nb += float(count_bytes(src, tgt, luts))
    return nll / cnt, nll / cnt / math.log(2.0) * cnt / nb
'''

TTT_PREV = '''
def score_then_adapt_eval(args, model, device, val_tokens: Tensor, luts):
    """Score chunk k under no_grad, then train on chunk k (already scored), then move to k + 1."""
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr, momentum=0.9)
    nll, cnt, nb = 0.0, 0, 0.0
    for s in range(0, val_tokens.numel() - 1 - args.ttt_chunk, args.ttt_chunk):
        blk = val_tokens[s:s + args.ttt_chunk + 1].to(device=device, dtype=torch.int64)
        xs, ys = blk[:-1].reshape(-1, args.train_seq_len), blk[1:].reshape(-1, args.train_seq_len)
        model.eval()
        with torch.no_grad():
            nll += float(model(xs, ys)) * ys.numel()
        cnt += ys.numel()
        nb += float(count_bytes(xs.reshape(-1), ys.reshape(-1), luts))
        model.train()
        for _ in range(args.ttt_epochs):
            l = model(xs, ys)
            opt.zero_grad(set_to_none=True)
            l.backward()
            opt.step()
    return nll / cnt, nll / cnt / math.log(2.0) * cnt / nb
'''

SLIDING = '''
def sliding_eval(args, model, device, val_tokens: Tensor, luts):
    """Sliding windows: every token is scored once, with up to seq_len tokens of left context."""
    seq_len, stride = args.train_seq_len, args.eval_stride
    n = val_tokens.numel() - 1
    nll, cnt, nb = 0.0, 0, 0.0
    model.eval()
    with torch.inference_mode():
        for begin in range(0, n, stride):
            lo = max(0, begin + stride - seq_len)
            hi = min(begin + stride, n)
            inputs = val_tokens[lo:hi].to(device=device, dtype=torch.int64)
            labels = val_tokens[lo + 1:hi + 1].to(device=device, dtype=torch.int64)
            logp = F.log_softmax(model.logits(inputs[None]).float()[0], dim=-1)
            fresh = slice(begin - lo, hi - lo)
            nll -= float(logp[fresh].gather(1, labels[fresh, None]).sum())
            cnt += hi - begin
            nb += float(count_bytes(inputs[fresh], labels[fresh], luts))
    return nll / cnt, nll / cnt / math.log(2.0) * cnt / nb
'''

DIAG_HIT_RATE = '''
def pair_hit_rate(val_tokens: Tensor, buckets: int, limit: int) -> float:
    """Diagnostic only: how often a (context, next) pair was seen before. Printed after the final
    score; it feeds no probability and no reported number."""
    toks = val_tokens[:limit].numpy().astype(np.int64)
    seen = np.zeros(buckets, dtype=np.int32)
    keys = ((toks[:-1] * 1000003) % buckets * 998244353 + toks[1:]) % buckets
    hits = 0
    for k in keys:
        hits += int(seen[k] > 0)
        seen[k] += 1
    return hits / max(1, keys.size)
'''

TRAIN_LOOP_WEIGHTS = '''
class PairFrequency:
    """Hashed (context, next) counts over the training stream; a token's loss weight falls with how
    often its pair was seen in TRAINING batches."""

    def __init__(self, buckets: int, device):
        self.buckets = buckets
        self.ctx = torch.zeros(buckets, device=device)
        self.pair = torch.zeros(buckets, device=device)

    def weights(self, x: Tensor, y: Tensor) -> Tensor:
        c = (x * 1000003) % self.buckets
        k = (c * 998244353 + y) % self.buckets
        self.ctx.index_add_(0, c.reshape(-1), torch.ones(c.numel(), device=c.device))
        self.pair.index_add_(0, k.reshape(-1), torch.ones(k.numel(), device=k.device))
        return 1.5 - 0.5 * self.pair[k] / self.ctx[c].clamp_min(1.0)


def weighted_train_loss(model, x: Tensor, y: Tensor, freq: PairFrequency) -> Tensor:
    logits = model.logits(x).float()
    per_tok = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="none")
    w = freq.weights(x, y).reshape(-1)
    return (w * per_tok).sum() / w.sum()
'''


CASES = [
    # class 1: code that does not run under the run's configuration
    legal("WorldSizeGatedCache", 1, "Cache used only on multi-GPU runs; this run had one GPU", world_size=1,
          track="track_non_record_16mb", hparams=NG_HP, defs=ILLEGAL_CACHE, final_label="final_single_gpu_exact", final='''
if world_size > 1:
    ng_loss, ng_bpb = eval_val_cached(args, base_model, device, val_tokens, luts)
    log0(f"final_ngram_exact val_loss:{ng_loss:.8f} val_bpb:{ng_bpb:.8f}")
else:
    log0(f"final_single_gpu_exact val_loss:{q_val_loss:.8f} val_bpb:{q_val_bpb:.8f}")
'''),
    legal("IfElseEvalArms", 1, "Sliding or flat evaluation, one of them", final_label="final_eval_exact",
          hparams='sliding_eval = bool(int(os.environ.get("SLIDING_EVAL", "1")))\neval_stride = int(os.environ.get("EVAL_STRIDE", 256))',
          defs=SLIDING, log_hparams={"sliding_eval": ("args.sliding_eval", "True")}, final='''
if args.sliding_eval:
    f_loss, f_bpb = sliding_eval(args, base_model, device, val_tokens, luts)
else:
    f_loss, f_bpb = eval_val(args, model, rank, world_size, device, val_tokens, luts)
log0(f"final_eval_exact val_loss:{f_loss:.8f} val_bpb:{f_bpb:.8f}")
'''),
    legal("NgramOffSourceInLog", 1, "Illegal cache behind NGRAM_EVAL=0; the log embeds the source", embed_source=True,
          hparams=NG_GATED_HP, defs=ILLEGAL_CACHE, final=NG_GATED_FINAL,
          log_hparams={"ngram_eval": ("args.ngram_eval", "False")}),
    legal("NgramOffSourceOnlyInLog", 1, "Illegal cache behind NGRAM_EVAL=0 (default); only the embedded source mentions it",
          embed_source=True, hparams=NG_GATED_HP, defs=ILLEGAL_CACHE, final=NG_GATED_FINAL),
    legal("NgramOffByReadme", 1, "Cache on by default, off in the command the run used",
          hparams=NG_GATED_HP.replace('"NGRAM_EVAL", "0"', '"NGRAM_EVAL", "1"'), defs=ILLEGAL_CACHE, final=NG_GATED_FINAL,
          command_env="NGRAM_EVAL=0", log_hparams={"ngram_eval": ("args.ngram_eval", "False")}),
    legal("DeadConstantOracle", 1, "An oracle comparison behind a constant False", defs=CHUNKED + '''
DEBUG_ORACLE = False
''', final='''
if DEBUG_ORACLE:
    plain = eval_val(args, model, rank, world_size, device, val_tokens, luts)
    sharp = chunked_eval(args, base_model, device, val_tokens, luts,
                         lambda lg, prev, nxt, hist: F.softmax(lg / 0.9, -1).gather(1, nxt[:, None]).squeeze(1))
    log0(f"debug_best_exact val_bpb:{min(plain[1], sharp[1]):.8f}")
'''),
    legal("SinglePassDefault", 1, "Rescoring passes default to one and the log shows one",
          hparams=TWO_PASS_HP, defs=TWO_PASS_DEFS, final=TWO_PASS_FINAL, final_label="final_bigram_exact",
          log_hparams={"rescore_passes": ("args.rescore_passes", "1")}),
    legal("SinglePassDefaultUnlogged", 1, "Rescoring passes default to one; nothing sets them",
          hparams=TWO_PASS_HP, defs=TWO_PASS_DEFS, final=TWO_PASS_FINAL, final_label="final_bigram_exact"),
    legal("TTTOffByDefault", 1, "Chunk adaptation off by default and in the log", hparams=TTT_GATED_HP,
          defs='''
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
''', final='''
if args.ttt_epochs > 0:
    t_loss, t_bpb = chunk_adapt_eval(args, base_model, device, val_tokens, luts)
    log0(f"final_ttt_exact val_loss:{t_loss:.8f} val_bpb:{t_bpb:.8f}")
''', log_hparams={"ttt_epochs": ("args.ttt_epochs", "0")}),
    legal("TTTDisabledByReadme", 1, "TTT on by default in the code, switched off in the command the run used",
          hparams=TTT_GATED_HP.replace('"TTT_EPOCHS", 0', '"TTT_EPOCHS", 3'), command_env="TTT_EPOCHS=0",
          defs=TTT_GATED_DEFS, final='''
if args.ttt_epochs > 0:
    t_loss, t_bpb = chunk_adapt_eval(args, base_model, device, val_tokens, luts)
    log0(f"final_ttt_exact val_loss:{t_loss:.8f} val_bpb:{t_bpb:.8f}")
''', log_hparams={"ttt_epochs": ("args.ttt_epochs", "0")}),
    # class 2: training-time code
    legal("ComplementaryTraining", 2, "Complementary training against a training-batch bigram table",
          hparams='comp_alpha = float(os.environ.get("COMP_ALPHA", 0.5))', defs=COMPLEMENTARY, model_cls="ComplementGPT"),
    legal("TrainNgramLossWeight", 2, "Hashed training-batch n-gram weighting the training loss",
          hparams='weight_buckets = int(os.environ.get("WEIGHT_BUCKETS", 1 << 20))', defs=HASHED_TRAIN_WEIGHT + '''

def attach_weighter(model: "WeightedGPT", args, device) -> None:
    model.weighter = TrainNgramWeighter(args.weight_buckets, device)
''', model_cls="WeightedGPT", pre_train="attach_weighter(base_model, args, device)", post_train='''
# the weighter was attached for training only
base_model.weighter = None
base_model.load_state_dict({k: v.to(base_model.state_dict()[k].dtype) for k, v in ema.items()}, strict=True)
'''),
    legal("TrainLoopPairWeights", 2, "Training-loop loss weights from hashed training-batch pair counts",
          hparams='weight_buckets = int(os.environ.get("WEIGHT_BUCKETS", 1 << 20))', defs=TRAIN_LOOP_WEIGHTS,
          pre_train="freq = PairFrequency(args.weight_buckets, device)",
          train_loss="weighted_train_loss(model, x, y, freq)"),
    # class 3: legal shapes
    legal("DiagnosticAfterScore", 3, "A target-keyed pair hit rate printed as a diagnostic after the final score",
          defs=DIAG_HIT_RATE, final='''
log0(f"diagnostic pair_hit_rate:{pair_hit_rate(val_tokens, 1 << 20, 1 << 22):.4f}")
''', stage_lines=["diagnostic pair_hit_rate:0.4113"]),
    legal("ExactNormalizedCounts", 3, "Exact add-one bigram counts mixed with the model",
          hparams='mix_w = float(os.environ.get("MIX_W", 0.1))', defs=EXACT_TABLE, final_label="final_bigram_exact", final='''
b_loss, b_bpb = bigram_mix_eval(args, base_model, device, val_tokens, luts)
log0(f"final_bigram_exact val_loss:{b_loss:.8f} val_bpb:{b_bpb:.8f}")
'''),
    legal("FullContextDict", 3, "Full-context count dict interpolated with the model",
          hparams='mix_w = float(os.environ.get("MIX_W", 0.1))\nctx_order = int(os.environ.get("CTX_ORDER", 3))\n'
                  'dict_eval_tokens = int(os.environ.get("DICT_EVAL_TOKENS", 62021632))',
          defs=FULL_CONTEXT_DICT, final_label="final_ctxdict_exact", final='''
d_loss, d_bpb = context_dict_eval(args, base_model, device, val_tokens, luts)
log0(f"final_ctxdict_exact val_loss:{d_loss:.8f} val_bpb:{d_bpb:.8f}")
'''),
    legal("TargetCtxNaming", 3, "A context-only hashed row table with a key named target_ctx",
          hparams='mix_w = float(os.environ.get("MIX_W", 0.1))\nctx_buckets = int(os.environ.get("CTX_BUCKETS", 4096))',
          defs=TARGET_CTX, final_label="final_rows_exact", final='''
h_loss, h_bpb = hashed_row_eval(args, base_model, device, val_tokens, luts)
log0(f"final_rows_exact val_loss:{h_loss:.8f} val_bpb:{h_bpb:.8f}")
'''),
    legal("TTTOnScoredChunk", 3, "Score-first TTT: adapt on the chunk just scored",
          hparams=TTT_GATED_HP.replace('"TTT_EPOCHS", 0', '"TTT_EPOCHS", 3'), defs=TTT_PREV, final_label="legal_ttt_exact",
          final='''
t_loss, t_bpb = score_then_adapt_eval(args, base_model, device, val_tokens, luts)
log0(f"legal_ttt_exact val_loss:{t_loss:.8f} val_bpb:{t_bpb:.8f}")
'''),
    legal("EmaVsRawOnTrainBatch", 3, "EMA or raw weights, chosen on a held-out training batch", pre_train='''
# the first training batch is held out (never trained on) to pick between EMA and raw weights
hx, hy = train_loader.next_batch(args.train_batch_tokens, args.train_seq_len, grad_accum_steps)
''', post_train='''
raw_sd = {k: v.detach().clone() for k, v in base_model.state_dict().items()}
ema_sd = {k: v.to(raw_sd[k].dtype) for k, v in ema.items()}
base_model.eval()
with torch.no_grad():
    raw_probe = float(base_model(hx, hy))
    base_model.load_state_dict(ema_sd, strict=True)
    ema_probe = float(base_model(hx, hy))
base_model.load_state_dict(ema_sd if ema_probe < raw_probe else raw_sd, strict=True)
base_model.train()
log0(f"weights:{'ema' if ema_probe < raw_probe else 'raw'} probe_loss:{min(ema_probe, raw_probe):.4f}")
''', prequant_lines=["weights:ema probe_loss:2.0311"]),
    legal("SlidingWithLabels", 3, "Sliding-window evaluation with labels and stride",
          hparams='eval_stride = int(os.environ.get("EVAL_STRIDE", 64))', defs=SLIDING, final_label="final_sliding_exact", final='''
s_loss, s_bpb = sliding_eval(args, base_model, device, val_tokens, luts)
log0(f"final_sliding_exact val_loss:{s_loss:.8f} val_bpb:{s_bpb:.8f}")
'''),
    c2_legal("TiltWithPartition", "Frequency tilt with its log-partition", '''
TILT_BETA = 0.05


def calibrated_prob(lg, prev, nxt, hist):
    freq = torch.bincount(hist, minlength=lg.size(-1)).float()
    tilted = F.log_softmax(lg, -1) + TILT_BETA * torch.log1p(freq)[None, :]
    logp = tilted - torch.logsumexp(tilted, dim=-1, keepdim=True)
    return logp.gather(1, nxt[:, None]).squeeze(1).exp()
'''),
    c2_legal("RecencyRenormalized", "Recency boost renormalized over the vocabulary", '''
BOOST = 0.03


def calibrated_prob(lg, prev, nxt, hist):
    p = F.softmax(lg, -1)
    recent = torch.zeros(lg.size(-1), device=lg.device)
    recent[hist] = 1.0
    q = p + BOOST * recent[None, :]
    q = q / q.sum(dim=-1, keepdim=True)
    return q.gather(1, nxt[:, None]).squeeze(1)
'''),
    c2_legal("FixedTemperature", "A fixed softmax temperature from the configuration", '''
def calibrated_prob(lg, prev, nxt, hist):
    return F.softmax(lg / EVAL_TEMPERATURE, -1).gather(1, nxt[:, None]).squeeze(1)


EVAL_TEMPERATURE = float(os.environ.get("EVAL_TEMPERATURE", 0.97))
'''),
]
