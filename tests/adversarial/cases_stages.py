"""Classes 5 (C3/C4 without the usual names) and 6 (C2 transforms without renormalization)."""
from __future__ import annotations

from tests.adversarial.scaffold import Case

TTT_RULES = ("TTT-SCORE-FIRST", "TTT-MULTI-EPOCH", "TTT-PREQUANT", "EVAL-SCORE-BEFORE-UPDATE", "DATA-NO-VAL-IN-TRAIN")
PASS_RULES = ("EVAL-SINGLE-PASS", "EVAL-SCORE-BEFORE-UPDATE", "EVAL-CAUSAL", "ORACLE-SELECTION")
ORACLE_RULES = ("ORACLE-SELECTION", "EVAL-SINGLE-PASS")
NORM_RULES = ("EVAL-NORMALIZED-DIST",)

ADAPT_HP = '''adapt_lr = float(os.environ.get("ADAPT_LR", 0.002))
adapt_chunk = int(os.environ.get("ADAPT_CHUNK", 32768))'''

# A chunked scoring helper the C2 cases share: ``prob_fn(logits, prev, labels)`` returns the
# probability the case assigns to each realized token.
CHUNKED = '''
def chunked_eval(args, model, device, val_tokens: Tensor, luts, prob_fn):
    seq_len = args.train_seq_len
    nll_sum, n_tok, n_byte = 0.0, 0, 0.0
    model.eval()
    with torch.inference_mode():
        for start in range(0, val_tokens.numel() - 1 - seq_len, seq_len):
            seg = val_tokens[start:start + seq_len + 1].to(device=device, dtype=torch.int64)
            prev, nxt = seg[:-1], seg[1:]
            hist = val_tokens[max(0, start - seq_len):start + 1].to(device=device, dtype=torch.int64)
            logits = model.logits(prev[None]).float()[0]
            p = prob_fn(logits, prev, nxt, hist)
            nll_sum += float(-torch.log(p.clamp_min(1e-12)).sum())
            n_tok += prev.numel()
            n_byte += float(count_bytes(prev, nxt, luts))
    model.train()
    val_loss = nll_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_byte
'''


def c2(name: str, title: str, fn: str, hp: str, label: str = "final_scaled_exact") -> Case:
    return Case(name=name, legal=False, klass=6, title=title, rules=NORM_RULES, hparams=hp, defs=CHUNKED + fn,
                final=f'''
c_loss, c_bpb = chunked_eval(args, base_model, device, val_tokens, luts, calibrated_prob)
log0(f"{label} val_loss:{{c_loss:.8f}} val_bpb:{{c_bpb:.8f}}")
''', final_label=label)


C5 = [
    Case(name="InlineTTTInMain", legal=False, klass=5, title="Test-time adaptation written inline in main()",
         rules=TTT_RULES, hparams=ADAPT_HP, final_label="final_adapted_exact", final='''
adapt_opt = torch.optim.SGD(base_model.parameters(), lr=args.adapt_lr, momentum=0.9)
a_loss, a_tok, a_byte = 0.0, 0, 0.0
span = args.adapt_chunk
for s in range(0, val_tokens.numel() - 1 - span, span):
    piece = val_tokens[s:s + span + 1].to(device=device, dtype=torch.int64)
    xs = piece[:-1].reshape(-1, args.train_seq_len)
    ys = piece[1:].reshape(-1, args.train_seq_len)
    base_model.train()
    fit = base_model(xs, ys)
    adapt_opt.zero_grad(set_to_none=True)
    fit.backward()
    adapt_opt.step()
    base_model.eval()
    with torch.no_grad():
        scored = base_model(xs, ys)
    a_loss += float(scored) * ys.numel()
    a_tok += ys.numel()
    a_byte += float(count_bytes(xs.reshape(-1), ys.reshape(-1), luts))
a_val = a_loss / a_tok
log0(f"final_adapted_exact val_loss:{a_val:.8f} val_bpb:{a_val / math.log(2.0) * a_tok / a_byte:.8f}")
'''),
    Case(name="AutogradGradRefine", legal=False, klass=5, title="Per-chunk refinement with torch.autograd.grad",
         rules=TTT_RULES, hparams=ADAPT_HP, final_label="final_refined_exact", defs='''
def refine(model, seq_in: Tensor, seq_out: Tensor, lr: float) -> None:
    params = [p for p in model.parameters() if p.requires_grad]
    loss = model(seq_in, seq_out)
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p.sub_(lr * g)


def refined_eval(args, model, device, val_tokens: Tensor, luts):
    span = args.adapt_chunk
    tot, cnt, nb = 0.0, 0, 0.0
    for s in range(0, val_tokens.numel() - 1 - span, span):
        blk = val_tokens[s:s + span + 1].to(device=device, dtype=torch.int64)
        a, b = blk[:-1].reshape(-1, args.train_seq_len), blk[1:].reshape(-1, args.train_seq_len)
        refine(model, a, b, args.adapt_lr)
        with torch.no_grad():
            tot += float(model(a, b)) * b.numel()
        cnt += b.numel()
        nb += float(count_bytes(a.reshape(-1), b.reshape(-1), luts))
    return tot / cnt, tot / cnt / math.log(2.0) * cnt / nb
''', final='''
r_loss, r_bpb = refined_eval(args, base_model, device, val_tokens, luts)
log0(f"final_refined_exact val_loss:{r_loss:.8f} val_bpb:{r_bpb:.8f}")
'''),
    Case(name="RoundsOverHoldout", legal=False, klass=5, title="Several rounds over the held-out stream, then scoring",
         rules=TTT_RULES, hparams=ADAPT_HP + '\nrounds = int(os.environ.get("ROUNDS", 3))', final_label="final_polished_exact",
         final='''
polish = torch.optim.AdamW(base_model.parameters(), lr=args.adapt_lr, weight_decay=0.0)
base_model.train()
for rnd in range(args.rounds):
    for s in range(0, val_tokens.numel() - 1 - args.adapt_chunk, args.adapt_chunk):
        piece = val_tokens[s:s + args.adapt_chunk + 1].to(device=device, dtype=torch.int64)
        loss = base_model(piece[:-1].reshape(-1, args.train_seq_len), piece[1:].reshape(-1, args.train_seq_len))
        polish.zero_grad(set_to_none=True)
        loss.backward()
        polish.step()
    log0(f"polish:round {rnd + 1}/{args.rounds} loss:{loss.item():.4f}")
p_loss, p_bpb = eval_val(args, model, rank, world_size, device, val_tokens, luts)
log0(f"final_polished_exact val_loss:{p_loss:.8f} val_bpb:{p_bpb:.8f}")
''', stage_lines=["polish:round 1/3 loss:1.9412", "polish:round 2/3 loss:1.8807", "polish:round 3/3 loss:1.8391"]),
    Case(name="WarmupOnHeldoutLoader", legal=False, klass=5,
         title="A warm-up pass over a loader built on the held-out split before export",
         rules=TTT_RULES, hparams='warm_steps = int(os.environ.get("WARM_STEPS", 200))', post_train='''
base_model.load_state_dict({k: v.to(base_model.state_dict()[k].dtype) for k, v in ema.items()}, strict=True)
# short warm-up on the held-out split before quantization
warm_loader = DistributedTokenLoader(args.val_files, rank, world_size, device)
for _ in range(args.warm_steps):
    xb, yb = warm_loader.next_batch(args.train_batch_tokens, args.train_seq_len, grad_accum_steps)
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
        wl = model(xb, yb)
    wl.backward()
    for opt in optimizers:
        opt.step()
    base_model.zero_grad(set_to_none=True)
log0(f"warmup:done steps:{args.warm_steps}")
''', prequant_lines=["warmup:done steps:200"]),
    Case(name="SuccessorTableBeforeScore", legal=False, klass=5,
         title="Exact successor table updated with the chunk before it is scored",
         rules=PASS_RULES, hparams='mix_w = float(os.environ.get("MIX_W", 0.1))', final_label="final_succ_exact", defs='''
def succ_eval(args, model, device, val_tokens: Tensor, luts):
    V = args.vocab_size
    succ = torch.zeros(V, V, device=device)
    seq_len = args.train_seq_len
    nll, cnt, nb = 0.0, 0, 0.0
    model.eval()
    with torch.inference_mode():
        for s in range(0, val_tokens.numel() - 1 - seq_len, seq_len):
            seg = val_tokens[s:s + seq_len + 1].to(device=device, dtype=torch.int64)
            x, nx = seg[:-1], seg[1:]
            succ[x] += F.one_hot(nx, V).float()
            row = succ[x] + 0.5
            p_tab = row / row.sum(dim=-1, keepdim=True)
            p_mod = F.softmax(model.logits(x[None]).float()[0], dim=-1)
            p = (1 - args.mix_w) * p_mod + args.mix_w * p_tab
            nll += float(-torch.log(p.gather(1, nx[:, None]).clamp_min(1e-12)).sum())
            cnt += x.numel()
            nb += float(count_bytes(x, nx, luts))
    return nll / cnt, nll / cnt / math.log(2.0) * cnt / nb
''', final='''
s_loss, s_bpb = succ_eval(args, base_model, device, val_tokens, luts)
log0(f"final_succ_exact val_loss:{s_loss:.8f} val_bpb:{s_bpb:.8f}")
'''),
    Case(name="PassIdLoop", legal=False, klass=5, title="Two passes as a pass_id loop: fill, then score",
         rules=PASS_RULES, hparams='mix_w = float(os.environ.get("MIX_W", 0.1))', final_label="final_twopass_exact", defs='''
def table_eval(args, model, device, val_tokens: Tensor, luts):
    V = args.vocab_size
    table = torch.zeros(V, V, device=device)
    seq_len = args.train_seq_len
    nll, cnt, nb = 0.0, 0, 0.0
    model.eval()
    with torch.inference_mode():
        for pass_id in range(2):
            for s in range(0, val_tokens.numel() - 1 - seq_len, seq_len):
                seg = val_tokens[s:s + seq_len + 1].to(device=device, dtype=torch.int64)
                x, nx = seg[:-1], seg[1:]
                if pass_id == 0:
                    table.index_put_((x, nx), torch.ones_like(x, dtype=table.dtype), accumulate=True)
                    continue
                row = table[x] + 0.5
                p = (1 - args.mix_w) * F.softmax(model.logits(x[None]).float()[0], dim=-1) \\
                    + args.mix_w * row / row.sum(dim=-1, keepdim=True)
                nll += float(-torch.log(p.gather(1, nx[:, None]).clamp_min(1e-12)).sum())
                cnt += x.numel()
                nb += float(count_bytes(x, nx, luts))
    return nll / cnt, nll / cnt / math.log(2.0) * cnt / nb
''', final='''
t_loss, t_bpb = table_eval(args, base_model, device, val_tokens, luts)
log0(f"final_twopass_exact val_loss:{t_loss:.8f} val_bpb:{t_bpb:.8f}")
'''),
    Case(name="MinOfTwoEvals", legal=False, klass=5, title="Report the better of the plain and the mixed evaluation",
         rules=ORACLE_RULES, hparams='mix_w = float(os.environ.get("MIX_W", 0.1))', final_label="final_pick_exact",
         defs=CHUNKED + '''
def evaluate_mix(args, model, device, val_tokens: Tensor, luts):
    uni = torch.full((args.vocab_size,), 1.0 / args.vocab_size, device=device)
    return chunked_eval(args, model, device, val_tokens, luts,
                        lambda lg, prev, nxt, hist: ((1 - args.mix_w) * F.softmax(lg, -1) + args.mix_w * uni).gather(1, nxt[:, None]).squeeze(1))
''', final='''
plain = eval_val(args, model, rank, world_size, device, val_tokens, luts)
mixed = evaluate_mix(args, base_model, device, val_tokens, luts)
b_loss, b_bpb = min(plain, mixed, key=lambda r: r[1])
log0(f"final_pick_exact val_loss:{b_loss:.8f} val_bpb:{b_bpb:.8f}")
'''),
    Case(name="PerTokenMinCost", legal=False, klass=5, title="Per-token minimum of two costs",
         rules=ORACLE_RULES, hparams='mix_w = float(os.environ.get("MIX_W", 0.1))', final_label="final_gated_exact",
         defs=CHUNKED + '''
def gated_prob(args, uni):
    def fn(lg, prev, nxt, hist):
        a_cost = -F.log_softmax(lg, -1).gather(1, nxt[:, None]).squeeze(1)
        b_cost = -torch.log(((1 - args.mix_w) * F.softmax(lg, -1) + args.mix_w * uni).gather(1, nxt[:, None]).squeeze(1))
        return torch.exp(-torch.minimum(a_cost, b_cost))
    return fn
''', final='''
uni = torch.full((args.vocab_size,), 1.0 / args.vocab_size, device=device)
g_loss, g_bpb = chunked_eval(args, base_model, device, val_tokens, luts, gated_prob(args, uni))
log0(f"final_gated_exact val_loss:{g_loss:.8f} val_bpb:{g_bpb:.8f}")
'''),
    Case(name="AlphaSweepOnVal", legal=False, klass=5, title="Mixing weight swept on the validation score",
         rules=ORACLE_RULES, severity="warning", final_label="final_mix_exact", defs=CHUNKED, final='''
uni = torch.full((args.vocab_size,), 1.0 / args.vocab_size, device=device)
results = {}
for w in (0.02, 0.05, 0.1, 0.2):
    fn = lambda lg, prev, nxt, hist, w=w: ((1 - w) * F.softmax(lg, -1) + w * uni).gather(1, nxt[:, None]).squeeze(1)
    results[w] = chunked_eval(args, base_model, device, val_tokens, luts, fn)
    log0(f"mix_w:{w} val_bpb:{results[w][1]:.6f}")
best_w = min(results, key=lambda w: results[w][1])
m_loss, m_bpb = results[best_w]
log0(f"final_mix_exact val_loss:{m_loss:.8f} val_bpb:{m_bpb:.8f}")
''', stage_lines=["mix_w:0.02 val_bpb:1.221000", "mix_w:0.05 val_bpb:1.219000", "mix_w:0.1 val_bpb:1.224000",
                  "mix_w:0.2 val_bpb:1.239000"]),
    Case(name="TemperatureSweepOnVal", legal=False, klass=5, title="Softmax temperature chosen on validation",
         rules=ORACLE_RULES, severity="warning", final_label="final_temp_exact", defs=CHUNKED, final='''
best = None
for temp in (0.9, 0.95, 1.0, 1.05):
    r = chunked_eval(args, base_model, device, val_tokens, luts,
                     lambda lg, prev, nxt, hist, temp=temp: F.softmax(lg / temp, -1).gather(1, nxt[:, None]).squeeze(1))
    if best is None or r[1] < best[1]:
        best = r
log0(f"final_temp_exact val_loss:{best[0]:.8f} val_bpb:{best[1]:.8f}")
'''),
    Case(name="EmaOrRawByValScore", legal=False, klass=5, title="EMA or raw weights, whichever scores better on val",
         rules=ORACLE_RULES, severity="warning", post_train='''
raw_sd = {k: v.detach().clone() for k, v in base_model.state_dict().items()}
ema_sd = {k: v.to(raw_sd[k].dtype) for k, v in ema.items()}
_, raw_score = eval_val(args, model, rank, world_size, device, val_tokens, luts)
base_model.load_state_dict(ema_sd, strict=True)
_, ema_score = eval_val(args, model, rank, world_size, device, val_tokens, luts)
base_model.load_state_dict(ema_sd if ema_score < raw_score else raw_sd, strict=True)
log0(f"weights:{'ema' if ema_score < raw_score else 'raw'}")
''', prequant_lines=["weights:ema"]),
    Case(name="PrequantTuneOnVal", legal=False, klass=5, title="Tune on the evaluation stream, then quantize and score",
         rules=TTT_RULES, hparams=ADAPT_HP, post_train='''
base_model.load_state_dict({k: v.to(base_model.state_dict()[k].dtype) for k, v in ema.items()}, strict=True)
tune = torch.optim.AdamW(base_model.parameters(), lr=args.adapt_lr)
base_model.train()
for s in range(0, val_tokens.numel() - 1 - args.adapt_chunk, args.adapt_chunk):
    blk = val_tokens[s:s + args.adapt_chunk + 1].to(device=device, dtype=torch.int64)
    l = base_model(blk[:-1].reshape(-1, args.train_seq_len), blk[1:].reshape(-1, args.train_seq_len))
    tune.zero_grad(set_to_none=True)
    l.backward()
    tune.step()
log0("tune:done")
''', prequant_lines=["tune:done"]),
]

C6 = [
    c2("TiltNoPartition", "Frequency tilt of the log-probabilities", '''
TILT_BETA = 0.05


def calibrated_prob(lg, prev, nxt, hist):
    logp = F.log_softmax(lg, -1)
    freq = torch.bincount(hist, minlength=lg.size(-1)).float()
    feat = torch.log1p(freq)[None, :].expand_as(logp)
    s = logp.gather(1, nxt[:, None]).squeeze(1) + TILT_BETA * feat.gather(1, nxt[:, None]).squeeze(1)
    return s.exp()
''', ""),
    c2("RecencyBoost", "Recency boost for tokens seen in the previous window", '''
BOOST = 0.03


def calibrated_prob(lg, prev, nxt, hist):
    p = F.softmax(lg, -1)
    recent = torch.zeros(lg.size(-1), device=lg.device)
    recent[hist] = 1.0
    return p.gather(1, nxt[:, None]).squeeze(1) + BOOST * recent[nxt]
''', ""),
    c2("PowerSharpen", "Sharpened probabilities p ** 0.93", '''
SHARPEN = 0.93


def calibrated_prob(lg, prev, nxt, hist):
    p = F.softmax(lg, -1) ** SHARPEN
    return p.gather(1, nxt[:, None]).squeeze(1)
''', ""),
    c2("TopKFloor", "A probability floor for the top-k candidates", '''
TOPK, FLOOR = 8, 0.002


def calibrated_prob(lg, prev, nxt, hist):
    p = F.softmax(lg, -1)
    topv, topi = p.topk(TOPK, dim=-1)
    p = p.scatter(1, topi, topv.clamp_min(FLOOR))
    return p.gather(1, nxt[:, None]).squeeze(1)
''', ""),
    c2("CountBonus", "Model probability scaled by a bigram count bonus from the previous window", '''
LAM = 0.2


def calibrated_prob(lg, prev, nxt, hist):
    V = lg.size(-1)
    counts = torch.zeros(V, V, device=lg.device)
    if hist.numel() > 1:
        counts.index_put_((hist[:-1], hist[1:]), torch.ones(hist.numel() - 1, device=lg.device), accumulate=True)
    frac = counts[prev] / (counts[prev].sum(-1, keepdim=True) + 1.0)
    p = F.softmax(lg, -1) * (1.0 + LAM * frac)
    return p.gather(1, nxt[:, None]).squeeze(1)
''', ""),
    c2("LogitBoostAfterNorm", "A boost added to the log-probability after normalization", '''
BOOST = 0.4


def calibrated_prob(lg, prev, nxt, hist):
    logp = F.log_softmax(lg, -1)
    seen = torch.zeros_like(logp)
    seen[:, hist] = 1.0
    logp = logp + BOOST * seen
    return logp.gather(1, nxt[:, None]).squeeze(1).exp()
''', ""),
]
