"""Preflight: everything that can be checked before the GPUs spin. One line per failed check, with the fix."""
from __future__ import annotations

import os
import shutil
import stat
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from auditor.reproduce.imports import BINARY_HINTS, install_hint, missing_binaries, missing_modules, module_found
from auditor.reproduce.plan import Plan

SHARD_MAGIC = 20240520  # records.md §4.4: 256 int32 header, magic, version, token count; uint16 tokens
SHARD_HEADER_BYTES = 256 * 4
MIN_FREE_BYTES = 1 << 30
_VAL_CAPS = ("VAL_MAX_TOKENS", "MAX_VAL_TOKENS", "VAL_TOKENS_LIMIT", "VAL_TOKEN_LIMIT")
CHECK_LIMIT_S = 30.0  # one check (a shard header, a tokenizer load) never holds the preflight longer
GIVEN_ORIGINS = ("--data", "--tokenizer", "--env")  # the reviewer named these paths; the README did not
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


@dataclass
class Check:
    name: str
    ok: bool
    message: str
    fix: str = ""
    warning: bool = False  # shown, but does not stop the run

    def line(self) -> str:
        mark = "ok  " if self.ok else ("warn" if self.warning else "FAIL")
        tail = f"  → fix: {self.fix}" if (self.fix and not self.ok) else ""
        return f"{mark} {self.name:9} {self.message}{tail}"

    @property
    def blocking(self) -> bool:
        return not self.ok and not self.warning


def _inside(path: Path, top: Path) -> bool:
    a, t = Path(os.path.abspath(path)), Path(os.path.abspath(top))
    r, rt = Path(os.path.realpath(path)), Path(os.path.realpath(top))
    return (a == t or t in a.parents) and (r == rt or rt in r.parents)


def _no_link_below(path: Path, top: Path) -> bool:
    """No component of ``path`` below ``top`` is a symlink (the record's own files are never followed)."""
    try:
        rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(top))
    except ValueError:
        return False
    p = Path(os.path.abspath(top))
    for part in rel.parts:
        p = p / part
        if os.path.islink(p):
            return False
    return True


def readable_regular(path: Path, record: Path | None = None) -> bool:
    """A regular file that can be read without blocking: inside the record folder, reached through
    no symlink at all; elsewhere (a path the reviewer gave) any regular file."""
    if record is not None and _inside(path, record) and not _no_link_below(path, record):
        return False
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _read_head(path: Path, n: int, record: Path | None = None) -> bytes | None:
    if not readable_regular(path, record):
        return None
    flags = _READ_FLAGS | (getattr(os, "O_NOFOLLOW", 0) if record is not None and _inside(path, record) else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, n)
    except OSError:
        return None
    finally:
        os.close(fd)


def shard_tokens(path: Path, record: Path | None = None) -> int | None:
    """Token count from a shard header, or None when the header is not a challenge shard (or the
    path is not a regular file that can be read without blocking)."""
    head = _read_head(path, 12, record)
    if head is None:
        return None
    if len(head) < 12:
        return None
    magic, version, n = struct.unpack("<3i", head)
    if magic != SHARD_MAGIC or version != 1:
        return None
    return n


def find_shards(data_dir: Path, split: str) -> list[Path]:
    found = sorted(data_dir.glob(f"fineweb_{split}_*.bin"))
    if not found:  # DATA_DIR-style scripts derive datasets/<variant>/ below the given folder
        found = sorted(data_dir.glob(f"*/fineweb_{split}_*.bin")) + sorted(data_dir.glob(f"*/*/fineweb_{split}_*.bin"))
    return found


def max_token_id(path: Path, limit: int = 1 << 20, record: Path | None = None) -> int | None:
    import numpy as np

    head = _read_head(path, SHARD_HEADER_BYTES + 2 * limit, record)
    if head is None:
        return None
    try:
        arr = np.frombuffer(head[SHARD_HEADER_BYTES:][: len(head[SHARD_HEADER_BYTES:]) // 2 * 2], dtype="<u2")
    except (OSError, ValueError):
        return None
    return int(arr.max()) if arr.size else None


def _data_checks(plan: Plan) -> list[Check]:
    out: list[Check] = []
    key = next((k for k in ("DATA_PATH", "DATA_DIR") if k in plan.env), None)
    if key is None:
        return [Check("data", False, "the record documents no DATA_PATH/DATA_DIR; the script default would be resolved inside the run copy",
                      "pass --data DIR (the folder holding fineweb_val_*.bin and fineweb_train_*.bin)")]
    d = Path(plan.env[key].value)
    outside = not_probed(plan, key, "pass --data DIR (the folder holding fineweb_val_*.bin and fineweb_train_*.bin)", "data")
    if outside:
        return [outside]
    rec = None if plan.env[key].origin in GIVEN_ORIGINS else plan.record
    if not d.is_dir() or (rec is not None and not _no_link_below(d, rec)):
        return [Check("data", False, f"{key}={d} does not exist ({plan.env[key].origin})",
                      "download the variant the logs name (data/cached_challenge_fineweb.py) or pass --data DIR")]
    val = find_shards(d, "val")
    train = find_shards(d, "train")
    if not val:
        return [Check("data", False, f"no fineweb_val_*.bin under {d}", "pass --data pointing at the dataset folder")]
    counts = [shard_tokens(p, rec) for p in val]
    bad = [p.name for p, c in zip(val, counts) if c is None]
    if bad:
        out.append(Check("data", False, f"{d}: not challenge shards (bad header magic/version): {', '.join(bad[:3])}",
                         "re-download the shards"))
        return out
    total = sum(c for c in counts if c)
    msg = f"{len(val)} val shard(s), {total:,} tokens; {len(train)} train shard(s) in {d}"
    if not train:
        out.append(Check("data", False, msg + "; no train shards", "download the train shards of the same variant"))
    else:
        out.append(Check("data", True, msg))
    if plan.expected_val_tokens is not None:
        # Scripts log the val tokens after trimming to whole sequences, so the shards may hold up to one sequence more.
        seq = int(plan.env["TRAIN_SEQ_LEN"].value) if plan.env.get("TRAIN_SEQ_LEN", None) and plan.env["TRAIN_SEQ_LEN"].value.isdigit() else 4096
        usable, cap_note = total, ""
        cap = next(((k, s.value) for k, s in plan.env.items() if k in _VAL_CAPS and s.value.isdigit() and int(s.value) > 0), None)
        if cap:  # the record documents evaluating a prefix of the split
            usable, cap_note = min(total, int(cap[1])), f", capped by {cap[0]}={cap[1]}"
        ok = usable - seq - 1 <= plan.expected_val_tokens <= usable
        out.append(Check("variant", ok, f"val tokens: shards {total:,}{cap_note}, the logs show {plan.expected_val_tokens:,} "
                         f"({plan.expected_val_tokens_origin})", "use the data variant the logs were made with (the val_tokens / val_loader line)"))
    if plan.expected_vocab:
        top = max_token_id(val[0], record=rec)
        if top is not None and top >= plan.expected_vocab:
            out.append(Check("variant", False, f"{val[0].name} holds token id {top} ≥ vocab size {plan.expected_vocab} ({plan.expected_vocab_origin})",
                             "use the dataset tokenized with the record's tokenizer"))
    return out


def not_probed(plan: Plan, key: str, fix: str, name: str) -> Check | None:
    """A failed check for a path the README or the logs name outside the record folder: pgolf does
    not look at it (a README must not make pgolf probe, or the sandbox show, arbitrary host paths)."""
    s = plan.env[key]
    if s.origin in GIVEN_ORIGINS or _inside(Path(s.value), plan.record):
        return None
    return Check(name, False, f"{key}={s.value} ({s.origin}) is outside the record folder; not probed, and not visible "
                              "to the run", fix)


def given_path(plan: Plan, keys: tuple[str, ...]) -> tuple[str | None, Path | None]:
    """(variable, path) of the first of ``keys`` whose path may be used: given by the reviewer, or
    inside the record folder through no symlink; (variable, None) when the plan names one that may not."""
    key = next((k for k in keys if k in plan.env), None)
    if key is None:
        return None, None
    s = plan.env[key]
    p = Path(s.value)
    if s.origin in GIVEN_ORIGINS or (_inside(p, plan.record) and _no_link_below(p, plan.record)):
        return key, p
    return key, None


def _bounded(name: str, fn, plan: Plan, limit_s: float) -> list[Check]:
    """Run one check with a time limit: a read that blocks (a FIFO swapped in, a hung mount) fails the
    check instead of the preflight (the thread is left behind, a daemon)."""
    box: list = []

    def target() -> None:
        try:
            box.append(fn(plan))
        except Exception as exc:  # a check bug is a failed check, not a traceback
            box.append([Check(name, False, f"could not check: {type(exc).__name__}: {exc}")])

    t = threading.Thread(target=target, daemon=True, name=f"pgolf-preflight-{name}")
    t.start()
    t.join(limit_s)
    if not box:
        return [Check(name, False, f"did not finish within {limit_s:.0f} s (a file that blocks on read?); not checked",
                      "check the paths the plan names")]
    return box[0]


def _tokenizer_check(plan: Plan) -> list[Check]:
    s = plan.env.get("TOKENIZER_PATH")
    if s is None:
        return []  # the script's default tokenizer; nothing documented to check
    p = Path(s.value)
    outside = not_probed(plan, "TOKENIZER_PATH", "pass --tokenizer FILE", "tokenizer")
    if outside:
        return [outside]
    if not readable_regular(p, None if s.origin in GIVEN_ORIGINS else plan.record):
        return [Check("tokenizer", False, f"TOKENIZER_PATH={p} does not exist ({s.origin})", "pass --tokenizer FILE")]
    if p.suffix != ".model":
        return [Check("tokenizer", True, f"{p.name} present (not a sentencepiece model; vocab not checked)")]
    try:
        import sentencepiece as spm

        sp = spm.SentencePieceProcessor(model_file=str(p))
        n = sp.vocab_size()
    except Exception as exc:  # a corrupt model is a failed check, not a crash
        return [Check("tokenizer", False, f"{p}: cannot load: {exc}", "pass --tokenizer with a valid sentencepiece model")]
    if plan.expected_vocab and n != plan.expected_vocab:
        return [Check("tokenizer", False, f"{p.name} has {n} pieces, the record expects vocab {plan.expected_vocab} ({plan.expected_vocab_origin})",
                      "use the tokenizer of the variant the logs show")]
    return [Check("tokenizer", True, f"{p.name}: {n} pieces")]


def _hardware_checks(plan: Plan) -> list[Check]:
    g = plan.gpu
    n = plan.needs
    out = []
    if g.count:
        kinds = ", ".join(sorted(set(g.names)))
        ok = g.count >= plan.nproc
        out.append(Check("gpu", ok, f"{g.count} GPU(s): {kinds}; {plan.nproc} process(es) per node",
                         f"use --nproc {g.count} or a machine with {plan.nproc} GPUs"))
        if ok and not all("H100" in x for x in g.names):
            out.append(Check("gpu", False, f"not H100 ({kinds}): times are not comparable with the 600 s caps", warning=True))
    elif n.uses_cuda and not n.cpu_fallback:
        line, what = n.uses_cuda[0]
        out.append(Check("gpu", False, f"no GPU visible ({g.error or 'nvidia-smi lists none'}), and {plan.entry}:{line} needs {what!r} without a CPU fallback",
                         "run on a GPU machine"))
    else:
        cpus = os.cpu_count() or 1
        out.append(Check("gpu", True, f"no GPU; {plan.nproc} CPU process(es) with gloo ({cpus} cores)"))
    return out


def _import_checks(plan: Plan) -> list[Check]:
    out = []
    if plan.needs.syntax_error:
        out.append(Check("script", False, f"{plan.entry} does not parse: {plan.needs.syntax_error}", "fix the script"))
    for need in missing_modules(plan.needs):
        lazy = " inside a function (needed only if that path runs)" if need.lazy else ""
        what = f"which is installed but does not import ({need.error})" if need.error else "which is not installed"
        out.append(Check("imports", False, f"{plan.entry}:{need.line} imports {need.module}{lazy}, {what}",
                         f"pip install --force-reinstall {install_hint(need.module)} (built for this torch and CUDA)" if need.error
                         else f"pip install {install_hint(need.module)}", warning=need.lazy))
    for b, line in missing_binaries(plan.needs):
        out.append(Check("binaries", False, f"{plan.entry}:{line} runs {b}, not on PATH", BINARY_HINTS.get(b, f"install {b}")))
    if not out and plan.needs.modules:
        present = [n.module for n in plan.needs.modules if module_found(n.module)]
        absent = [n.module for n in plan.needs.modules if n.optional and n.module not in present]
        msg = f"{len(present)} third-party module(s) importable: " + ", ".join(present[:8])
        if absent:  # guarded by try/except ImportError: the script runs without them
            msg += "; optional, not installed: " + ", ".join(absent[:8])
        out.append(Check("imports", True, msg))
    return out


def _disk_check(plan: Plan) -> Check:
    probe = plan.run_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    size = sum(st.st_size for st in (os.lstat(p) for p in plan.record.rglob("*")) if stat.S_ISREG(st.st_mode))
    need = MIN_FREE_BYTES + size * len(plan.seeds)
    return Check("disk", free >= need, f"{free / 2**30:.1f} GiB free at {probe} (need {need / 2**30:.1f} GiB)",
                 "free space or choose --run-dir on a larger disk")


def preflight(plan: Plan, sandbox_error: str | None = None) -> list[Check]:
    checks: list[Check] = []
    if not plan.entry or not (plan.record / plan.entry).is_file():
        checks.append(Check("script", False, f"{plan.display}: no entry script (train_gpt.py or the README's torchrun target)",
                            "add train_gpt.py to the record folder"))
    else:
        checks.append(Check("script", True, f"{plan.entry}"))
    checks.append(Check("seeds", bool(plan.seeds), f"{len(plan.seeds)} seed(s): {', '.join(map(str, plan.seeds))} ({plan.seeds_origin})",
                        "pass --seeds 1337,42,2025"))
    mw = plan.env.get("MAX_WALLCLOCK_SECONDS")
    if plan.track == "10min" and mw is not None:
        try:
            ok = float(mw.value) == 600.0
        except ValueError:
            ok = False
        # A real (GPU) re-run of a 10-minute record must train under the 600 s cap; a CPU smoke run need not.
        checks.append(Check("budget", ok, f"MAX_WALLCLOCK_SECONDS={mw.value} ({mw.origin}) in a 10-minute-track record",
                            "the 10-minute track trains for 600 s: --env MAX_WALLCLOCK_SECONDS=600 (or --force)",
                            warning=not plan.gpu.count))
    checks += _import_checks(plan)
    checks += _hardware_checks(plan)
    checks += _bounded("data", _data_checks, plan, CHECK_LIMIT_S)
    checks += _bounded("tokenizer", _tokenizer_check, plan, CHECK_LIMIT_S)
    checks += _bounded("disk", lambda p: [_disk_check(p)], plan, CHECK_LIMIT_S)
    if plan.sandbox == "none" and sandbox_error:
        checks.append(Check("sandbox", False, f"no sandbox available: {sandbox_error}",
                            "install bubblewrap, or pass --no-sandbox to run the record unconfined (network on, writes anywhere)"))
    else:
        checks.append(Check("sandbox", True, "bubblewrap: network off (loopback up), writes only in the run dir"
                            if plan.sandbox == "bwrap" else "none (--no-sandbox): the record runs unconfined",
                            warning=plan.sandbox != "bwrap"))
        if plan.sandbox != "bwrap":
            checks[-1].ok = False
    if plan.run_dir.exists() and any(plan.run_dir.iterdir()):
        checks.append(Check("run dir", False, f"{plan.run_dir} exists and is not empty", "choose a new --run-dir"))
    return checks
