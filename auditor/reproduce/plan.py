"""The plan: what `pgolf reproduce` will run, and where each setting came from.

Everything is read from the record as documented (records.md §6 "Reproducer recipe"): the
seeds from submission.json or the logs, the env prefix of the README's torchrun line, the
hyperparameter dump the logs print, then the user's overrides. Nothing is executed here.
"""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from auditor.discover import discover
from auditor.evidence import Evidence, read_evidence
from auditor.reproduce.imports import ScriptNeeds, scan_script
from auditor.reproduce.throughput import RunTiming, replay_ms_per_step, timing_of

DEFAULT_SEED = 1337  # the baseline script's default
DEFAULT_LIMIT_S = 2400.0  # per seed; the #1868 compliance rerun used 40 minutes
# Dumped hyperparameters never copied into the environment: machine-specific paths, the
# parallel layout torchrun decides, and the per-seed values the harness sets itself.
_NOT_FROM_DUMP = {"SEED", "RUN_ID", "WORLD_SIZE", "RANK", "LOCAL_RANK", "GRAD_ACCUM_STEPS", "DATA_PATH", "DATA_DIR",
                  "TOKENIZER_PATH", "DATASETS_DIR", "TRAIN_FILES", "VAL_FILES", "LOGFILE", "ARTIFACT_DIR", "IS_MAIN_PROCESS"}
_ENV_TOKEN = re.compile(r"^([A-Z_][A-Z0-9_]*)=(.*)$", re.S)
_ASSIGN_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(\S+)\s*$")
_SHELL_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_NPROC = re.compile(r"--nproc[_-]per[_-]node[= ](\w+)")


@dataclass
class Source:
    value: str
    origin: str  # "README.md:12", "logs/x.txt hyperparameters", "--env", "default"


@dataclass
class GpuInfo:
    count: int = 0
    names: list[str] = field(default_factory=list)
    error: str | None = None


# The record's own knobs for the step count and the wall-clock cap (the baseline's names first).
ITERATION_KNOBS = ("ITERATIONS", "NUM_ITERATIONS", "MAX_STEPS", "TRAIN_STEPS")
CAP_KNOBS = ("MAX_WALLCLOCK_SECONDS", "MAX_WALLCLOCK_S", "WALLCLOCK_SECONDS", "TRAIN_TIME_SECONDS")


@dataclass
class StepMatch:
    """How one seed is matched to the claimed run: ``replay`` (the replayed clock at the claimed
    per-step time, the cap as documented), ``steps`` (the cap lifted, the step count set to the claimed
    stop step) or ``raw`` (as documented)."""

    mode: str
    claimed: RunTiming | None = None
    ms_per_step: float | None = None  # replay: what the clock advances by per step
    env: dict[str, str] = field(default_factory=dict)  # steps: the knobs set for this seed
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.mode == "replay":
            return f"replayed clock at {self.ms_per_step:.4f} ms/step (claimed: {self.claimed.describe()}, {self.claimed.where})"
        if self.mode == "steps":
            knobs = " ".join(f"{k}={v}" for k, v in self.env.items())
            return f"step-matched: {knobs} (claimed: {self.claimed.describe()}, {self.claimed.where})"
        return "as documented" + (f" ({self.notes[0]})" if self.notes else "")


@dataclass
class Plan:
    record: Path
    display: str
    entry: str | None
    track: str | None
    seeds: list[int]
    seeds_origin: str
    env: dict[str, Source]
    nproc: int
    nproc_origin: str
    run_dir: Path
    limit_s: float
    nnodes: str | None = None
    rdzv_endpoint: str | None = None
    rdzv_backend: str = "c10d"
    readme_command: str | None = None
    readme_line: int | None = None
    logged: dict[str, str] = field(default_factory=dict)  # hyperparameters of the claimed runs (first log)
    expected_val_tokens: int | None = None
    expected_val_tokens_origin: str | None = None
    expected_vocab: int | None = None
    expected_vocab_origin: str | None = None
    claimed_by_seed: dict[int, tuple[float, str]] = field(default_factory=dict)  # seed -> (val_bpb, origin): the logs first
    claimed_seed_results: dict[int, float] = field(default_factory=dict)  # submission.json seed_results, checked too
    needs: ScriptNeeds = field(default_factory=ScriptNeeds)
    gpu: GpuInfo = field(default_factory=GpuInfo)
    sandbox: str = "none"  # "bwrap" | "none"
    evidence: Evidence | None = None
    matching: dict[int, StepMatch] = field(default_factory=dict)  # seed -> how its stop step is matched
    target: str | None = None  # --target: a named machine for the timing projection

    def match_for(self, seed: int) -> StepMatch:
        return self.matching.get(seed) or StepMatch("raw")

    def env_for(self, seed: int) -> dict[str, str]:
        env = {k: s.value for k, s in self.env.items()}
        # the step match sets the record's own knobs, unless the reviewer set them with --env
        env.update({k: v for k, v in self.match_for(seed).env.items() if k not in self.env or self.env[k].origin != "--env"})
        env.setdefault("SEED", str(seed))
        env["SEED"] = str(seed)
        env["RUN_ID"] = f"train_seed{seed}"
        return env

    def torchrun_args(self, log_dir: Path) -> list[str]:
        args = [sys.executable, "-m", "torch.distributed.run"]
        if self.nnodes or self.rdzv_endpoint:
            args += [f"--nnodes={self.nnodes or 1}", f"--rdzv-backend={self.rdzv_backend}",
                     f"--rdzv-endpoint={self.rdzv_endpoint or 'localhost:0'}"]
        else:
            args.append("--standalone")
        args += [f"--nproc_per_node={self.nproc}", "--log-dir", str(log_dir), "--tee", "3", self.entry or "train_gpt.py"]
        return args

    def describe(self) -> list[str]:
        """The plan as the lines `--dry-run` prints."""
        lines = [f"record     {self.display}", f"script     {self.entry or '(none found)'}",
                 f"track      {self.track or '(unknown)'}",
                 f"seeds      {', '.join(map(str, self.seeds))}   ({self.seeds_origin})",
                 f"processes  {self.nproc} per node ({self.nproc_origin})"
                 + (f", nnodes {self.nnodes}, rendezvous {self.rdzv_endpoint}" if self.nnodes or self.rdzv_endpoint else ", --standalone"),
                 f"sandbox    {self.sandbox}",
                 f"limit      {self.limit_s:.0f} s wall clock per seed (the whole process group is killed)",
                 f"run dir    {self.run_dir}"]
        if self.readme_command:
            lines.append(f"README     line {self.readme_line}: {self.readme_command}")
        lines.append("env")
        for k in sorted(self.env):
            lines.append(f"  {k}={self.env[k].value}   ({self.env[k].origin})")
        lines.append("  SEED=<seed> RUN_ID=train_seed<seed>   (per seed)")
        if self.matching:
            lines.append("stop step")
            for s in self.seeds:
                m = self.match_for(s)
                lines.append(f"  seed {s}: {m.describe()}")
                lines += [f"    note: {n}" for n in (m.notes[1:] if m.mode == "raw" else m.notes)]
        if self.target:
            lines.append(f"target     {self.target} (timing projection)")
        if self.claimed_by_seed:
            lines.append("claimed")
            for s in sorted(self.claimed_by_seed):
                v, o = self.claimed_by_seed[s]
                lines.append(f"  seed {s}: val_bpb {v:.8f}   ({o})")
        for seed in self.seeds[:1]:
            cmd = " ".join(shlex.quote(a) for a in self.torchrun_args(self.run_dir / f"seed_{seed}" / "ranks"))
            lines.append(f"command    (cd {self.run_dir / f'seed_{seed}' / 'record'} && {cmd})")
        return lines


def detect_gpus() -> GpuInfo:
    """GPUs as nvidia-smi lists them; no torch import (the auditor process stays torch-free)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return GpuInfo(0, [], "nvidia-smi not found")
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return GpuInfo(0, [], f"nvidia-smi failed: {exc}")
    names = [m.group(1).strip() for m in re.finditer(r"^GPU \d+: ([^(]+)", out.stdout, re.M)]
    return GpuInfo(len(names), names, None if out.returncode == 0 else out.stderr.strip()[:200])


def _expand(value: str, shell_vars: dict[str, str]) -> str:
    """``$X``/``${X}`` from earlier README lines, and a leading ``~``; unknown variables stay as written."""
    value = _SHELL_VAR.sub(lambda m: shell_vars.get(m.group(1) or m.group(2), m.group(0)), value)
    return str(Path(value).expanduser()) if value.startswith("~") else value


def readme_command(readme: str | None, entry: str | None) -> tuple[str, int, dict[str, str], str | None] | None:
    """The README's torchrun line: (command, line, env prefix, nproc). Continuation lines are joined."""
    if not readme:
        return None
    lines = readme.splitlines()
    best = None
    shell_vars: dict[str, str] = {}
    i = 0
    while i < len(lines):
        start = i
        text = lines[i]
        m_var = _ASSIGN_LINE.match(text)
        if m_var:  # `PGOLF_DATA=~/.cache/pgolf/data` on its own line: used as $PGOLF_DATA below
            shell_vars[m_var.group(1)] = _expand(m_var.group(2).strip("'\""), shell_vars)
        while text.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text.rstrip()[:-1] + " " + lines[i].strip()
        i += 1
        if "torchrun" not in text and "torch.distributed.run" not in text:
            continue
        cmd = text.strip().strip("`").strip()
        cmd = re.sub(r"^\$\s+", "", cmd)
        try:
            toks = shlex.split(cmd, comments=False)
        except ValueError:
            toks = cmd.split()
        env: dict[str, str] = {}
        for t in toks:
            if t in ("env", "export", "sudo"):
                continue
            m = _ENV_TOKEN.match(t)
            if not m:
                break
            env[m.group(1)] = _expand(m.group(2), shell_vars)
        m = _NPROC.search(cmd)
        cand = (cmd, start + 1, env, m.group(1) if m else None)
        names_entry = entry and entry in cmd
        # The first line that names the entry script wins; among others, the one with most env.
        if best is None or (names_entry and not best[1]) or (bool(names_entry) == best[1] and len(env) > len(best[0][2])):
            best = (cand, bool(names_entry))
    return best[0] if best else None


def _claimed_by_seed(ev: Evidence) -> dict[int, tuple[float, str]]:
    out: dict[int, tuple[float, str]] = {}
    for lf in ev.logs:
        run = lf.last_run
        if not run or not run.final or run.final.val_bpb is None:
            continue
        seed = run.seed if run.seed is not None else lf.seed_from_name
        if seed is not None and seed not in out:
            out[seed] = (run.final.val_bpb, f"{lf.path}:{run.final.line}")
    for seed, v in _seed_results(ev).items():
        if seed not in out:
            out[seed] = (v, f"{ev.claims.file} seed_results")
    return out


def _timing_by_seed(ev: Evidence) -> dict[int, RunTiming]:
    """Each claimed seed's stop step, step time and cap, from the same log its claimed score comes from."""
    out: dict[int, RunTiming] = {}
    for lf in ev.logs:
        run = lf.last_run
        if not run:
            continue
        seed = run.seed if run.seed is not None else lf.seed_from_name
        if seed is not None and seed not in out:
            t = timing_of(run, lf.path)
            if t is not None:
                out[seed] = t
    return out


def _knob(names: tuple[str, ...], needs: ScriptNeeds, env: dict[str, Source], text: str) -> str | None:
    """The first of ``names`` the script reads (statically, or as a string literal) or the README sets."""
    for n in names:
        if n in needs.env_reads or n in env or re.search(rf"['\"]{n}['\"]", text):
            return n
    return None


def plan_matching(seeds: list[int], timings: dict[int, RunTiming], needs: ScriptNeeds, env: dict[str, Source], text: str,
                  match_steps: bool | None, replay_clock: bool | None) -> dict[int, StepMatch]:
    """Per seed: replay the clock when the claimed log has per-step times and a cap; else lift the cap
    and run to the claimed stop step; else run as documented. ``None`` options mean the default."""
    it_knob, cap_knob = _knob(ITERATION_KNOBS, needs, env, text), _knob(CAP_KNOBS, needs, env, text)
    out: dict[int, StepMatch] = {}
    for seed in seeds:
        t = timings.get(seed)
        if t is None or not t.knows_stop:
            why = "no claimed log for this seed" if t is None else f"{t.where} shows no stop step"
            out[seed] = StepMatch("raw", t, notes=[why])
            continue
        capped = bool(t.cap_s and t.cap_s > 0)
        match = match_steps if match_steps is not None else capped
        replay = replay_clock if replay_clock is not None else (match and capped)
        notes: list[str] = []
        if replay:
            d, why = replay_ms_per_step(t)
            if d is not None:
                out[seed] = StepMatch("replay", t, ms_per_step=d, notes=[why])
                continue
            notes.append(f"the clock cannot be replayed: {why}; time-based schedules (warm-down, QAT, EMA windows) may differ")
        if not match:
            out[seed] = StepMatch("raw", t, notes=notes or ["--no-match-steps" if match_steps is False else "the claimed run had no wall-clock cap"])
            continue
        if not it_knob:
            out[seed] = StepMatch("raw", t, notes=notes + [f"the script reads none of {', '.join(ITERATION_KNOBS)}: the stop step cannot be set"])
            continue
        knobs = {it_knob: str(t.stop_step)}
        if cap_knob:
            knobs[cap_knob] = "0"
        elif capped:
            notes.append(f"the script reads none of {', '.join(CAP_KNOBS)}: the cap stays and may stop the run first")
        if not replay:
            notes.append("the per-step time is not replayed: time-based schedules (warm-down, QAT, EMA windows) "
                         "follow the step count and may differ from the claimed run")
        out[seed] = StepMatch("steps", t, env=knobs, notes=notes)
    return out


def _seed_results(ev: Evidence) -> dict[int, float]:
    out = {}
    for seed, res in (ev.claims.seed_results or {}).items():
        v = res.get("val_bpb") if isinstance(res, dict) else None
        try:
            if isinstance(v, (int, float)):
                out[int(seed)] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def _seeds(ev: Evidence, claimed: dict[int, tuple[float, str]]) -> tuple[list[int], str]:
    if ev.claims.seeds:
        return list(ev.claims.seeds), f"{ev.claims.file} seeds"
    raw = ev.claims.raw.get("seeds") if isinstance(ev.claims.raw, dict) else None
    if isinstance(raw, list) and raw and all(isinstance(s, int) or (isinstance(s, str) and s.isdigit()) for s in raw):
        return [int(s) for s in raw], f"{ev.claims.file} seeds"
    if claimed:
        return sorted(claimed), "the seeds of the logs"
    return [DEFAULT_SEED], "no seeds documented; the baseline default"


def _logged(ev: Evidence) -> tuple[dict[str, str], str | None, int | None, str | None]:
    """The first dump of hyperparameters, and the val token count the logs show."""
    dump: dict[str, str] = {}
    origin = None
    val_tokens = None
    vt_origin = None
    for lf in ev.logs:
        run = lf.last_run
        if not run:
            continue
        if run.hyperparameters and not dump:
            dump, origin = dict(run.hyperparameters), lf.path
        if run.val_tokens and val_tokens is None:
            val_tokens, vt_origin = run.val_tokens, lf.path
    return dump, origin, val_tokens, vt_origin


def _read_entry(path: Path, root: Path) -> str:
    """The entrant's entry script, never through a symlink: a link is refused even when it points
    inside the folder, and ``auditor.fs.read_bytes`` opens with O_NOFOLLOW (a link swapped in after
    the check is refused too); unreadable is empty: the plan then scans nothing."""
    from auditor.fs import UnreadableFile, read_bytes

    if path.is_symlink():
        return ""
    try:
        return read_bytes(path, root).decode("utf-8", errors="replace")
    except (UnreadableFile, OSError):
        return ""


def build_plan(record: str | Path, *, seeds: list[int] | None = None, nproc: int | None = None, env: dict[str, str] | None = None,
               data: str | None = None, tokenizer: str | None = None, run_dir: str | Path | None = None,
               limit_s: float | None = None, nnodes: str | None = None, rdzv_endpoint: str | None = None,
               rdzv_backend: str = "c10d", sandbox: str = "none", gpu: GpuInfo | None = None,
               match_steps: bool | None = None, replay_clock: bool | None = None, target: str | None = None) -> Plan:
    disc = discover([record])
    if not disc.folders:
        why = disc.problems[0].line() if disc.problems else f"{record}: no record folder"
        raise PlanError(why)
    folder = disc.folders[0]
    ev = read_evidence(folder)
    entry = ev.code.entry
    local = {p.stem for p in folder.path.glob("*.py")} | {p.name for p in folder.path.iterdir() if p.is_dir()}
    entry_text = ""
    if entry and (folder.path / entry).is_file() and not (folder.path / entry).is_symlink():
        # a self-extracting wrapper is scanned as the code it decodes to
        cf = next((f for f in ev.code.files if f.role == "decoded" and f.decoded_from == entry), None) or ev.code.get(entry)
        entry_text = (cf.compat_text or cf.text) if cf else _read_entry(folder.path / entry, folder.path)
    needs = scan_script(entry_text, local) if entry_text else ScriptNeeds()

    claimed = _claimed_by_seed(ev)
    if seeds:
        seed_list, seeds_origin = list(seeds), "--seeds"
    else:
        seed_list, seeds_origin = _seeds(ev, claimed)

    plan_env: dict[str, Source] = {}
    dump, dump_origin, val_tokens, vt_origin = _logged(ev)
    for key, value in dump.items():
        name = key.strip().upper()
        if name in needs.env_reads and name not in _NOT_FROM_DUMP and "/" not in value and value.strip():
            plan_env[name] = Source(value.strip(), f"{dump_origin} hyperparameters")
    rc = readme_command(ev.readme, entry)
    nproc_origin = ""
    readme_nproc = None
    if rc:
        for k, v in rc[2].items():
            if k not in ("SEED", "RUN_ID"):
                plan_env[k] = Source(v, f"{ev.readme_file}:{rc[1]}")
        readme_nproc = rc[3]
    for key, path in (("data", data), ("tokenizer", tokenizer)):
        if path:
            names = ("DATA_PATH", "DATA_DIR") if key == "data" else ("TOKENIZER_PATH",)
            name = next((n for n in names if n in needs.env_reads), names[0])
            plan_env[name] = Source(str(Path(path).absolute()), f"--{key}")
    for k, v in (env or {}).items():
        plan_env[k] = Source(v, "--env")
    # Relative paths in the documented env are relative to the record folder; the run happens in a copy.
    for k, s in plan_env.items():
        if (k.endswith(("_PATH", "_DIR")) or k in ("DATA_PATH", "TOKENIZER_PATH")) and s.value and not Path(s.value).is_absolute():
            cand = (folder.path / s.value)
            s.value = str(cand.resolve()) if cand.exists() else str((Path.cwd() / s.value).absolute())

    gpu = gpu if gpu is not None else detect_gpus()
    if nproc is not None:
        n, nproc_origin = nproc, "--nproc"
    elif gpu.count:
        n, nproc_origin = 8, "default on a GPU machine"
    else:
        n, nproc_origin = 1, "default without a GPU"
    if readme_nproc and nproc is None:
        nproc_origin += f"; the README says {readme_nproc}"

    vocab, vocab_origin = None, None
    if "VOCAB_SIZE" in plan_env and plan_env["VOCAB_SIZE"].value.isdigit():
        vocab, vocab_origin = int(plan_env["VOCAB_SIZE"].value), plan_env["VOCAB_SIZE"].origin
    elif dump.get("vocab_size", "").strip().isdigit():
        vocab, vocab_origin = int(dump["vocab_size"].strip()), f"{dump_origin} hyperparameters"

    matching = plan_matching(seed_list, _timing_by_seed(ev), needs, plan_env, entry_text, match_steps, replay_clock)

    stamp = time.strftime("%Y%m%d-%H%M%S")
    rd = Path(run_dir) if run_dir else Path.cwd() / "pgolf-runs" / f"{folder.path.name}-{stamp}"
    return Plan(
        record=folder.path, display=folder.display, entry=entry, track=folder.track, seeds=seed_list, seeds_origin=seeds_origin,
        env=plan_env, nproc=n, nproc_origin=nproc_origin, run_dir=rd.absolute(), limit_s=limit_s or DEFAULT_LIMIT_S,
        nnodes=nnodes, rdzv_endpoint=rdzv_endpoint, rdzv_backend=rdzv_backend,
        readme_command=rc[0] if rc else None, readme_line=rc[1] if rc else None, logged=dump,
        expected_val_tokens=val_tokens, expected_val_tokens_origin=vt_origin, expected_vocab=vocab, expected_vocab_origin=vocab_origin,
        claimed_by_seed=claimed, claimed_seed_results=_seed_results(ev), needs=needs, gpu=gpu, sandbox=sandbox, evidence=ev,
        matching=matching, target=target,
    )


class PlanError(Exception):
    """The folder cannot be planned at all (not a record folder)."""
