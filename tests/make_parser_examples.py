"""Write the parser/report-consistency example record folders (our own code, logs and JSON).

    python -m tests.make_parser_examples        # (re)writes examples/records/track_10min_16mb/2026-11-01_*

The logs are in the baseline logfile format: the script's whole source, a ``=``×100 line, the
Python/PyTorch banner, the header lines, training progress, the stop line, sizes and the final
round-trip score. ``tests/test_parser_examples.py`` checks that the committed folders equal what this
script writes and that each one gets the verdict the examples README promises.
"""
from __future__ import annotations

import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "examples" / "records" / "track_10min_16mb"
PREFIX = "2026-11-01_"
SEP = "=" * 100

TRAIN_GPT = '''\
"""Tiny GPT for the parameter-golf examples: a 2-layer model on the sp1024 FineWeb shards.

Everything that counts lives in this file. The score is the baseline's: mean token NLL over the
whole validation stream, converted to bits per byte with the SentencePiece byte counts, measured
after the int8+zlib round trip of the saved model.
"""
import glob
import io
import math
import os
import time
import zlib

import numpy as np
import sentencepiece as spm
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = os.environ.get("DATA_PATH", "./data/datasets/fineweb10B_sp1024")
TOKENIZER = os.environ.get("TOKENIZER_PATH", "./data/tokenizers/fineweb_1024_bpe.model")
SEED = int(os.environ.get("SEED", "1337"))
ITERATIONS = int(os.environ.get("ITERATIONS", "20000"))
MAX_WALLCLOCK_SECONDS = float(os.environ.get("MAX_WALLCLOCK_SECONDS", "600"))
SEQ_LEN, BATCH_TOKENS, DIM, LAYERS, VOCAB = 1024, 524288, 256, 2, 1024


def log0(msg, logfile=None):
    print(msg)
    if logfile is not None:
        with open(logfile, "a") as fh:
            fh.write(msg + "\\n")


def load_tokens(pattern):
    parts = []
    for path in sorted(glob.glob(pattern)):
        header = np.fromfile(path, dtype="<i4", count=256)
        assert header[0] == 20240520 and header[1] == 1
        parts.append(np.fromfile(path, dtype="<u2", count=int(header[2]), offset=1024))
    return torch.from_numpy(np.concatenate(parts).astype(np.int64))


def byte_luts(sp):
    n = sp.get_piece_size()
    base = torch.zeros(VOCAB, dtype=torch.int64)
    space = torch.zeros(VOCAB, dtype=torch.bool)
    boundary = torch.ones(VOCAB, dtype=torch.bool)
    for t in range(n):
        if sp.is_control(t) or sp.is_unknown(t) or sp.is_unused(t):
            continue
        boundary[t] = False
        piece = sp.id_to_piece(t)
        if sp.is_byte(t):
            base[t] = 1
            continue
        space[t] = piece.startswith("\\u2581")
        base[t] = len(piece.lstrip("\\u2581").encode("utf-8"))
    return base, space, boundary


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(DIM), nn.LayerNorm(DIM)
        self.attn = nn.MultiheadAttention(DIM, 4, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(DIM, 4 * DIM), nn.GELU(), nn.Linear(4 * DIM, DIM))

    def forward(self, x, mask):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(VOCAB, DIM)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln = nn.LayerNorm(DIM)

    def forward(self, idx):
        t = idx.size(1)
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool, device=idx.device), 1)
        x = self.emb(idx)
        for b in self.blocks:
            x = b(x, mask)
        return self.ln(x) @ self.emb.weight.T


@torch.no_grad()
def evaluate(model, val, luts):
    base, space, boundary = luts
    n = (val.numel() - 1) // SEQ_LEN * SEQ_LEN
    nll, tokens, nbytes = 0.0, 0, 0
    for i in range(0, n, SEQ_LEN):
        x, y = val[i:i + SEQ_LEN][None], val[i + 1:i + SEQ_LEN + 1][None]
        nll += F.cross_entropy(model(x).flatten(0, 1).float(), y.flatten(), reduction="sum").item()
        tokens += y.numel()
        nbytes += int((base[y] + (space[y] & ~boundary[x])).sum())
    loss = nll / tokens
    return loss, loss / math.log(2) * tokens / nbytes


def quantize(state):
    out = {}
    for k, v in state.items():
        if v.is_floating_point() and v.ndim == 2:
            scale = v.abs().amax(dim=1, keepdim=True).clamp_min(1e-8) / 127
            out[k] = ((v / scale).round().to(torch.int8), scale.half())
        else:
            out[k] = v.half() if v.is_floating_point() else v
    return out


def dequantize(q):
    return {k: (v[0].float() * v[1].float()) if isinstance(v, tuple) else v.float() for k, v in q.items()}


def main():
    torch.manual_seed(SEED)
    logfile = f"logs/train_seed{SEED}.txt"
    os.makedirs("logs", exist_ok=True)
    code = open(__file__).read()
    log0(code, logfile)
    log0("=" * 100, logfile)
    log0(f"Running PyTorch {torch.__version__}", logfile)
    log0("=" * 100, logfile)
    sp = spm.SentencePieceProcessor(model_file=TOKENIZER)
    luts = byte_luts(sp)
    train, val = load_tokens(f"{DATA}/fineweb_train_*.bin"), load_tokens(f"{DATA}/fineweb_val_*.bin")
    log0(f"val_loader:shards pattern={DATA}/fineweb_val_*.bin tokens:{val.numel()}", logfile)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    log0(f"world_size:{world_size} grad_accum_steps:{8 // world_size}", logfile)
    log0(f"train_batch_tokens:{BATCH_TOKENS} train_seq_len:{SEQ_LEN} iterations:{ITERATIONS} "
         f"max_wallclock_seconds:{MAX_WALLCLOCK_SECONDS:.3f}", logfile)
    log0(f"seed:{SEED}", logfile)
    model = GPT()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    elapsed, step, pos = 0.0, 0, 0
    for step in range(1, ITERATIONS + 1):
        t0 = time.perf_counter()
        chunk = train[pos:pos + BATCH_TOKENS // 8 + 1]
        pos = (pos + BATCH_TOKENS // 8) % (train.numel() - BATCH_TOKENS)
        x, y = chunk[:-1].view(-1, SEQ_LEN), chunk[1:].view(-1, SEQ_LEN)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        elapsed += time.perf_counter() - t0
        if step % 1000 == 0:
            log0(f"step:{step}/{ITERATIONS} train_loss:{loss.item():.4f} train_time:{elapsed * 1000:.0f}ms "
                 f"step_avg:{elapsed * 1000 / step:.2f}ms", logfile)
        if MAX_WALLCLOCK_SECONDS > 0 and elapsed >= MAX_WALLCLOCK_SECONDS:
            log0(f"stopping_early: wallclock_cap train_time:{elapsed * 1000:.0f}ms step:{step}/{ITERATIONS}", logfile)
            break
    buf = io.BytesIO()
    torch.save(quantize(model.state_dict()), buf)
    blob = zlib.compress(buf.getvalue(), 9)
    with open("final_model.int8.ptz", "wb") as fh:
        fh.write(blob)
    code_bytes = len(code.encode("utf-8"))
    log0(f"Code size: {code_bytes} bytes", logfile)
    log0(f"Serialized model int8+zlib: {len(blob)} bytes", logfile)
    log0(f"Total submission size int8+zlib: {len(blob) + code_bytes} bytes", logfile)
    with open("final_model.int8.ptz", "rb") as fh:
        state = torch.load(io.BytesIO(zlib.decompress(fh.read())))
    model.load_state_dict(dequantize(state))
    t0 = time.perf_counter()
    val_loss, val_bpb = evaluate(model, val, luts)
    ms = (time.perf_counter() - t0) * 1000
    log0(f"final_int8_zlib_roundtrip val_loss:{val_loss:.4f} val_bpb:{val_bpb:.4f} eval_time:{ms:.0f}ms", logfile)
    log0(f"final_int8_zlib_roundtrip_exact val_loss:{val_loss:.8f} val_bpb:{val_bpb:.8f}", logfile)


if __name__ == "__main__":
    main()
'''

README = """# {title}

{body}

Example written for pgolf's tests (see `examples/README.md`); the logs are synthetic and
in the format the script above writes.

Run: `SEED=1337 torchrun --standalone --nproc_per_node=8 train_gpt.py`
"""

SEEDS = (1337, 42, 2025)
FINALS = {1337: 1.23614852, 42: 1.23702119, 2025: 1.23551408}


def make_log(seed: int, final: float, code: str = TRAIN_GPT, model_bytes: int = 15_652_117) -> str:
    rng = random.Random(seed)
    code_bytes = len(code.encode("utf-8"))
    out = [code, SEP, "Running PyTorch 2.8.0+cu128", SEP,
           "val_loader:shards pattern=./data/datasets/fineweb10B_sp1024/fineweb_val_*.bin tokens:62021632",
           "world_size:8 grad_accum_steps:1",
           "train_batch_tokens:524288 train_seq_len:1024 iterations:20000 max_wallclock_seconds:600.000",
           f"seed:{seed}"]
    step_ms = 43.5 + rng.random()
    last = int(599_900 // step_ms)
    loss = 4.0
    for step in range(1000, last, 1000):
        loss = 2.05 + 1.9 / (1 + step / 700) + rng.uniform(-0.01, 0.01)
        out.append(f"step:{step}/20000 train_loss:{loss:.4f} train_time:{step * step_ms:.0f}ms step_avg:{step_ms:.2f}ms")
    out.append(f"stopping_early: wallclock_cap train_time:{last * step_ms:.0f}ms step:{last}/20000")
    model = model_bytes + seed % 977
    out += [f"Code size: {code_bytes} bytes", f"Serialized model int8+zlib: {model} bytes",
            f"Total submission size int8+zlib: {model + code_bytes} bytes"]
    val_loss = final * 0.4094 * 4.15
    out.append(f"final_int8_zlib_roundtrip val_loss:{val_loss:.4f} val_bpb:{final:.4f} eval_time:{1400 + seed % 97}ms")
    out.append(f"final_int8_zlib_roundtrip_exact val_loss:{val_loss:.8f} val_bpb:{final:.8f}")
    return "\n".join(out) + "\n"


def submission(val_bpb: str, seeds=SEEDS, finals=FINALS, bytes_total: int | None = None, extra: str = "") -> str:
    results = ",\n".join(f'    "{s}": {{"val_bpb": {finals[s]:.8f}}}' for s in seeds)
    code_bytes = len(TRAIN_GPT.encode())
    total = bytes_total or max(15_652_117 + s % 977 for s in seeds) + code_bytes
    return ("{\n"
            '  "author": "pgolf examples",\n'
            '  "github_id": "pgolf-examples",\n'
            f'  "name": "Tiny GPT example",\n'
            '  "date": "2026-11-01",\n'
            '  "track": "10min_16mb",\n'
            f'  "val_bpb": {val_bpb},\n'
            f'  "bytes_total": {total},\n'
            f'  "bytes_code": {code_bytes},\n'
            f'  "seeds": [{", ".join(str(s) for s in seeds)}],\n'
            f'  "seed_results": {{\n{results}\n  }}{extra}\n'
            "}\n")


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def folders() -> dict[str, dict[str, str]]:
    good_mean = f"{mean(FINALS.values()):.8f}"
    logs = {f"train_seed{s}.log": make_log(s, FINALS[s]) for s in SEEDS}
    base = {"train_gpt.py": TRAIN_GPT, **logs}
    out: dict[str, dict[str, str]] = {}
    out["Clean"] = {**base, "README.md": README.format(title="Clean example", body="Three seeds; the claim is the mean of their finals."),
                    "submission.json": submission(good_mean)}
    out["ClaimInNoLog"] = {**base, "README.md": README.format(title="Claim in no log", body="val_bpb 1.2200 appears in no log."),
                           "submission.json": submission("1.2200")}
    edited = dict(FINALS)
    edited[42] = 1.22702119  # one seed "improved" by 0.01 in the JSON only
    out["EditedClaim"] = {**base, "README.md": README.format(title="Edited claim", body="Seed 42's result was edited after the run."),
                          "submission.json": submission(f"{mean(edited.values()):.8f}", finals=edited)}
    out["ClaimFromDiagnostic"] = {
        **base,
        "train_seed1337.log": logs["train_seed1337.log"].replace(  # the log line, not the format string in the source
            "\nCode size: %d" % len(TRAIN_GPT.encode()),
            "\nDIAGNOSTIC post_ema val_loss:2.0000 val_bpb:1.2111 eval_time:1900ms\nCode size: %d" % len(TRAIN_GPT.encode())),
        "README.md": README.format(title="Claim from a diagnostic line", body="The claim is a pre-quantization diagnostic score."),
        "submission.json": submission("1.2111")}
    out["MissingFiles"] = {k: v for k, v in base.items() if k != "train_gpt.py"}
    out["MissingFiles"]["submission.json"] = submission(good_mean)
    out["OneSeed"] = {"train_gpt.py": TRAIN_GPT, "train_seed1337.log": logs["train_seed1337.log"],
                      "README.md": README.format(title="One seed", body="A record-track claim backed by one seed."),
                      "submission.json": submission(f"{FINALS[1337]:.8f}", seeds=(1337,))}
    older = TRAIN_GPT.replace("DIM, LAYERS, VOCAB = 1024, 524288, 256, 2, 1024", "DIM, LAYERS, VOCAB = 1024, 524288, 256, 3, 1024")
    out["CodeMismatch"] = {**base, **{f"train_seed{s}.log": make_log(s, FINALS[s], code=older) for s in SEEDS},
                           "README.md": README.format(title="Logs from other code", body="The logs were written by a 3-layer version of the script."),
                           "submission.json": submission(good_mean)}
    out["MessyJSON"] = {**base, "README.md": README.format(title="Messy submission.json", body="Fenced JSON, a string number, a trailing comma."),
                        "submission.json": "```json\n" + submission(f'"{good_mean}"').replace('"seeds"', '"seeds_note": "three",\n  "seeds"')
                        .rstrip().rstrip("}").rstrip() + ",\n}\n```\n"}
    return {PREFIX + "ParserDemo_" + k: v for k, v in out.items()}


EXPECTED = {  # folder -> (verdict, rules that must report at warning or above)
    PREFIX + "ParserDemo_Clean": ("pass", set()),
    PREFIX + "ParserDemo_ClaimInNoLog": ("fail", {"REPORT-CONSISTENCY"}),
    PREFIX + "ParserDemo_EditedClaim": ("fail", {"REPORT-CONSISTENCY"}),
    PREFIX + "ParserDemo_ClaimFromDiagnostic": ("needs-review", {"REPORT-CONSISTENCY"}),
    PREFIX + "ParserDemo_MissingFiles": ("fail", {"SUBMISSION-FILES"}),
    PREFIX + "ParserDemo_OneSeed": ("fail", {"SUBMISSION-FILES", "STATS-SEEDS"}),
    PREFIX + "ParserDemo_CodeMismatch": ("needs-review", {"REPORT-CONSISTENCY"}),
    PREFIX + "ParserDemo_MessyJSON": ("needs-review", {"SUBMISSION-FILES"}),
}


def write(root: Path = ROOT) -> list[Path]:
    written = []
    for name, files in folders().items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for rel, text in files.items():
            p = folder / rel
            p.write_text(text, encoding="utf-8")
            written.append(p)
    return written


if __name__ == "__main__":
    for p in write():
        print(p)
