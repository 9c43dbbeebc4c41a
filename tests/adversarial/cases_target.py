"""Class 4: the target by value. Every case is the same illegal shape (a hashed n-gram cache whose
key mixes the context with the token being scored, looked up for the realized token only and
mixed into its probability), with the target derived or carried some other way than ``y``."""
from __future__ import annotations

from tests.adversarial.scaffold import Case

NGRAM_RULES = ("NGRAM-TARGET-IN-KEY", "NGRAM-HASHED-CACHE", "EVAL-NORMALIZED-DIST")

HP = '''ngram_alpha = float(os.environ.get("NGRAM_ALPHA", 0.35))
ngram_buckets = int(os.environ.get("NGRAM_BUCKETS", 1 << 22))'''

FINAL = '''
t_ng = time.perf_counter()
ng_loss, ng_bpb = eval_val_cached(args, base_model, device, val_tokens, luts)
log0(f"ngram_eval:done elapsed:{time.perf_counter() - t_ng:.1f}s")
log0(f"final_ngram_exact val_loss:{ng_loss:.8f} val_bpb:{ng_bpb:.8f}")
'''

STAGE = ["ngram_eval:done elapsed:188.4s"]

LOOP = '''
P_CTX, P_PAIR = 1000003, 998244353


def ctx_hash(prev: Tensor, buckets: int) -> Tensor:
    return (prev * P_CTX) % buckets{helpers}


def eval_val_cached(args, model, device, val_tokens: Tensor, luts):
    """Score-first cached eval: each window is scored, then its counts enter the tables."""
    seq_len = args.train_seq_len
    buckets = args.ngram_buckets
    ctx_tab = torch.zeros(buckets, dtype=torch.float32, device=device)
    pair_tab = torch.zeros(buckets, dtype=torch.float32, device=device)
    nll_sum, n_tok, n_byte = 0.0, 0, 0.0
    model.eval()
    with torch.inference_mode():
        for start in range(0, val_tokens.numel() - 1 - seq_len, seq_len):
            window = val_tokens[start:start + seq_len + 1].to(device=device, dtype=torch.int64)
            inp = window[:-1]
{target}
            logp = F.log_softmax(model.logits(inp[None]).float()[0], dim=-1)
            p_nn = logp.gather(1, {tv}[:, None]).squeeze(1).exp()
            ch = ctx_hash(inp, buckets)
{key}
            seen = ctx_tab[ch]
            hit = pair_tab[{kv}]
            p_ng = torch.minimum(hit, seen) / seen.clamp_min(1.0)
            mix = torch.where(seen > 0, (1 - args.ngram_alpha) * p_nn + args.ngram_alpha * p_ng, p_nn)
            nll_sum += float(-torch.log(mix.clamp_min(1e-12)).sum())
            ctx_tab.index_add_(0, ch, torch.ones_like(ch, dtype=torch.float32))
            pair_tab.index_add_(0, {kv}, torch.ones_like(ch, dtype=torch.float32))
            n_tok += inp.numel()
            n_byte += float(count_bytes(inp, {tv}, luts))
    model.train()
    val_loss = nll_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_byte
'''


def _ind(s: str, n: int = 12) -> str:
    return "\n".join((" " * n + ln) if ln.strip() else "" for ln in s.strip("\n").split("\n"))


def loop(target: str, tv: str, key: str, kv: str, helpers: str = "") -> str:
    return LOOP.format(helpers="\n\n\n" + helpers.strip("\n") if helpers else "", target=_ind(target), tv=tv,
                       key=_ind(key), kv=kv)


def case(name: str, title: str, defs: str, imports: str = "") -> Case:
    return Case(name=name, legal=False, klass=4, title=title, rules=NGRAM_RULES, hparams=HP, defs=defs,
                imports=imports, final=FINAL, final_label="final_ngram_exact", stage_lines=STAGE)


CASES = [
    case("LabelsSlice", "N-gram mixer: labels from the stream slice, pair key from labels",
         loop("labels = window[1:]", "labels", "pk = (ch * P_PAIR + labels) % buckets", "pk")),
    case("NpRoll", "N-gram mixer with rolled successor ids",
         loop("succ_np = np.roll(window.cpu().numpy(), -1)[:-1]\nnxt = torch.from_numpy(succ_np).to(device)",
              "nxt", "slot = (ch * P_PAIR + nxt) % buckets", "slot")),
    case("ShiftHelper", "N-gram mixer with a shift helper",
         loop("following = shift(window)", "following", "cell = (ch * P_PAIR + following) % buckets", "cell",
              helpers='''
def shift(s: Tensor) -> Tensor:
    """The stream advanced by one position."""
    return s[1:]
''')),
    case("IndexSelect", "N-gram mixer reading the successor with index_select",
         loop("later = torch.index_select(window, 0, torch.arange(1, window.numel(), device=device))",
              "later", "cell = (ch * P_PAIR + later) % buckets", "cell")),
    case("AbsolutePositions", "N-gram mixer indexing the stream at absolute positions",
         loop("pos = torch.arange(start + 1, start + seq_len + 1)\ngold = val_tokens[pos].to(device)",
              "gold", "cell = (ch * P_PAIR + gold) % buckets", "cell")),
    case("DictCarrier", "N-gram mixer with the batch in a dict",
         loop('batch = {"src": inp, "dst": window[1:]}', 'batch["dst"]',
              'cell = (ch * P_PAIR + batch["dst"]) % buckets', "cell")),
    case("TupleHelper", "N-gram mixer with an input/output split helper",
         loop("a_ids, b_ids = split_io(window)", "b_ids", "cell = (ch * P_PAIR + b_ids) % buckets", "cell",
              helpers='''
def split_io(w: Tensor):
    return w[:-1], w[1:]
''')),
    case("LambdaKey", "N-gram mixer with a lambda key",
         loop("ahead = window[1:]\nmk = lambda c, t: (c * P_PAIR + t) % buckets", "ahead", "cell = mk(ch, ahead)", "cell")),
    case("ClosureFactory", "N-gram mixer with a keyer closure",
         loop("ahead = window[1:]", "ahead", "cell = keyer(ahead, buckets)(ch)", "cell",
              helpers='''
def keyer(t: Tensor, buckets: int):
    def make(c: Tensor) -> Tensor:
        return (c * P_PAIR + t) % buckets
    return make
''')),
    case("PartialKey", "N-gram mixer with a partial key function",
         loop("ahead = window[1:]\nkey_of = functools.partial(pair_key, salt=ahead, buckets=buckets)", "ahead",
              "cell = key_of(ch)", "cell",
              helpers='''
def pair_key(c: Tensor, salt: Tensor, buckets: int) -> Tensor:
    return (c * P_PAIR + salt) % buckets
'''), imports="import functools"),
    case("Comprehension", "N-gram mixer building keys in a comprehension",
         loop("ahead = window[1:]", "ahead",
              "cell = torch.tensor([(int(c) * P_PAIR + int(t)) % buckets for c, t in zip(ch.tolist(), ahead.tolist())],\n"
              "                    device=device)", "cell")),
    # The same shape through an object: the successor parked on an instance, read back in a method.
    Case(name="InstanceAttr", legal=False, klass=4, title="N-gram ledger keeping the upcoming ids on the instance",
         rules=NGRAM_RULES, hparams=HP, final=FINAL.replace("eval_val_cached(args, base_model", "ledger_eval(args, base_model"),
         final_label="final_ngram_exact", stage_lines=STAGE, defs='''
class Ledger:
    def __init__(self, buckets: int, device):
        self.buckets = buckets
        self.ctx = torch.zeros(buckets, device=device)
        self.pairs = torch.zeros(buckets, device=device)
        self.upcoming = None

    def cells(self, prev: Tensor):
        c = (prev * 1000003) % self.buckets
        return c, (c * 998244353 + self.upcoming) % self.buckets

    def probe(self, prev: Tensor) -> Tensor:
        c, pc = self.cells(prev)
        seen = self.ctx[c]
        return torch.minimum(self.pairs[pc], seen) / seen.clamp_min(1.0)

    def absorb(self, prev: Tensor) -> None:
        c, pc = self.cells(prev)
        self.ctx.index_add_(0, c, torch.ones_like(c, dtype=self.ctx.dtype))
        self.pairs.index_add_(0, pc, torch.ones_like(pc, dtype=self.pairs.dtype))


def ledger_eval(args, model, device, val_tokens: Tensor, luts):
    seq_len = args.train_seq_len
    ledger = Ledger(args.ngram_buckets, device)
    nll_sum, n_tok, n_byte = 0.0, 0, 0.0
    model.eval()
    with torch.inference_mode():
        for start in range(0, val_tokens.numel() - 1 - seq_len, seq_len):
            window = val_tokens[start:start + seq_len + 1].to(device=device, dtype=torch.int64)
            inp = window[:-1]
            ledger.upcoming = window[1:]
            p_nn = F.softmax(model.logits(inp[None]).float()[0], dim=-1).gather(1, window[1:, None]).squeeze(1)
            p = (1 - args.ngram_alpha) * p_nn + args.ngram_alpha * ledger.probe(inp)
            nll_sum += float(-torch.log(p.clamp_min(1e-12)).sum())
            ledger.absorb(inp)
            n_tok += inp.numel()
            n_byte += float(count_bytes(inp, window[1:], luts))
    model.train()
    val_loss = nll_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_byte
'''),
    Case(name="ClassAttr", legal=False, klass=4, title="N-gram mixer with the successor on a class attribute",
         rules=NGRAM_RULES, hparams=HP, final=FINAL, final_label="final_ngram_exact", stage_lines=STAGE,
         defs=loop("Cursor.nxt = window[1:]", "Cursor.nxt", "cell = pair_cell(ch, buckets)", "cell", helpers='''
class Cursor:
    nxt = None


def pair_cell(c: Tensor, buckets: int) -> Tensor:
    return (c * P_PAIR + Cursor.nxt) % buckets
''')),
    Case(name="GetattrConst", legal=False, klass=4, title="N-gram mixer reading the successor through getattr",
         rules=NGRAM_RULES, hparams=HP, final=FINAL, final_label="final_ngram_exact", stage_lines=STAGE,
         defs=loop("state = Window(window)\nfut = getattr(state, \"ahead\")", "fut",
                   "cell = (ch * P_PAIR + fut) % buckets", "cell", helpers='''
class Window:
    def __init__(self, w: Tensor):
        self.behind = w[:-1]
        self.ahead = w[1:]
''')),
    Case(name="NumpyAddAt", legal=False, klass=4, title="NumPy n-gram tables updated with np.add.at",
         rules=NGRAM_RULES, hparams=HP, final=FINAL.replace("eval_val_cached", "np_cached_eval"),
         final_label="final_ngram_exact", stage_lines=STAGE, defs='''
def np_cached_eval(args, model, device, val_tokens: Tensor, luts):
    seq_len = args.train_seq_len
    B = args.ngram_buckets
    ctx_np = np.zeros(B, dtype=np.float64)
    pair_np = np.zeros(B, dtype=np.float64)
    stream = val_tokens.numpy().astype(np.int64)
    nll_sum, n_tok, n_byte = 0.0, 0, 0.0
    model.eval()
    with torch.inference_mode():
        for start in range(0, stream.size - 1 - seq_len, seq_len):
            prev = stream[start:start + seq_len]
            fut = stream[start + 1:start + seq_len + 1]
            logits = model.logits(torch.from_numpy(prev).to(device)[None]).float()[0]
            p_nn = F.softmax(logits, dim=-1).cpu().numpy()[np.arange(seq_len), fut]
            h = (prev * 1000003) % B
            hk = (h * 998244353 + fut) % B
            seen = ctx_np[h]
            p_ng = np.minimum(pair_np[hk], seen) / np.maximum(seen, 1.0)
            p = np.where(seen > 0, (1 - args.ngram_alpha) * p_nn + args.ngram_alpha * p_ng, p_nn)
            nll_sum += float(-np.log(np.maximum(p, 1e-12)).sum())
            np.add.at(ctx_np, h, 1.0)
            np.add.at(pair_np, hk, 1.0)
            n_tok += seq_len
            n_byte += float(count_bytes(torch.from_numpy(prev), torch.from_numpy(fut), luts))
    model.train()
    val_loss = nll_sum / n_tok
    return val_loss, val_loss / math.log(2.0) * n_tok / n_byte
'''),
]
