"""The measure step, between reading and the rules: one final score per seed and their mean
(records.md §3.4 step 4), then the artifact bytes (``auditor.measure_bytes``). Rules only judge
what is measured here, so the report's ``measured`` block does not depend on which rules run.

Logs are chosen by seed (the run's ``seed:`` line, else the seed in the file name). Exact duplicate
blobs are ignored, and so are logs of seeds the submission does not list when it lists seeds (reruns,
ablations). When one seed has several logs (an original and a rerun), the one whose final agrees with
the per-seed claim (or, when the folder has one seed, the claim) is used, else the first by name;
copies under ``.ipynb_checkpoints/`` are ignored. ``Measured.extra`` says which logs were used and
why others were not, so a reviewer can follow the choice.
"""
from __future__ import annotations

from auditor.evidence import Evidence
from auditor.measure_bytes import artifact_bytes
from auditor.model import LogFile, Measured, Problem, RunLog, SeedMeasure


def _seed_of(lf: LogFile, run: RunLog) -> int | None:
    return run.seed if run.seed is not None else lf.seed_from_name


def _eval_time_ms(run: RunLog) -> float | None:
    """The evaluation time the log shows: ``total_eval_time`` when printed, else the final line's own."""
    if run.total_eval_time_s is not None:
        return run.total_eval_time_s * 1000.0
    return run.final.eval_time_ms if run.final else None


def seed_measure(lf: LogFile, run: RunLog) -> SeedMeasure:
    final = run.final
    code = run.code_bytes_compressed or run.code_bytes
    return SeedMeasure(
        seed=_seed_of(lf, run),
        val_bpb=final.val_bpb if final else None,
        val_loss=final.val_loss if final else None,
        label=final.label if final else None,
        train_time_ms=run.train_time_ms,
        eval_time_ms=_eval_time_ms(run),
        bytes_total=run.total_bytes.value if run.total_bytes else None,
        bytes_code=code.value if code else None,
        log=lf.path,
        world_size=run.world_size,
    )


def measure(ev: Evidence) -> Measured:
    m = measure_scores(ev)
    try:
        m.artifact = artifact_bytes(ev, m)
    except Exception as exc:  # a measuring bug must not take the audit down; it is reported
        ev.problems.append(Problem(ev.folder.display, f"could not measure the artifact bytes: {type(exc).__name__}: {exc}"))
    return m


def measure_scores(ev: Evidence) -> Measured:
    m = Measured()
    used: list[str] = []
    ignored: list[dict[str, str]] = []
    seen_blobs: dict[str, str] = {}
    by_seed: dict[int | None, list[SeedMeasure]] = {}
    order: list[int | None] = []
    listed = set(ev.claims.seeds) | set(ev.claims.seed_results)
    candidates: list[tuple[LogFile, RunLog]] = []
    for lf in sorted(ev.logs, key=lambda x: x.path):
        if lf.sha256 and lf.sha256 in seen_blobs:
            ignored.append({"log": lf.path, "why": f"byte-identical to {seen_blobs[lf.sha256]}"})
            continue
        if lf.sha256:
            seen_blobs[lf.sha256] = lf.path
        if ".ipynb_checkpoints/" in lf.path:
            ignored.append({"log": lf.path, "why": "an editor checkpoint copy"})
            continue
        run = lf.last_run
        if run is None or run.final is None:
            ignored.append({"log": lf.path, "why": "no score line"})
            continue
        candidates.append((lf, run))
    # Only drop unlisted seeds when some log does match a listed seed: a wrong list is a finding,
    # not a reason to measure nothing.
    any_listed = any(_seed_of(lf, r) in listed for lf, r in candidates)
    for lf, run in candidates:
        seed = _seed_of(lf, run)
        if listed and seed not in listed and lf.seed_from_name in listed:
            # the file name and the listing agree where the log's own seed line does not
            # (train_seed0.log printing seed:1337): trust the two that agree
            seed = lf.seed_from_name
        if listed and any_listed and seed is not None and seed not in listed:
            ignored.append({"log": lf.path, "why": f"seed {seed} is not listed in {ev.claims.file or 'submission.json'}"})
            continue
        sm = seed_measure(lf, run)
        sm.seed = seed
        if seed is None:
            # a seedless log repeating another log's exact final (train.log next to train_seed1337.log)
            twin = next((x for xs in by_seed.values() for x in xs if x.val_bpb == sm.val_bpb and x.val_loss == sm.val_loss), None)
            if twin is not None:
                ignored.append({"log": lf.path, "why": f"repeats the final of {twin.log}"})
                continue
            by_seed.setdefault(("nolog", lf.path), [sm])  # type: ignore[arg-type]
            order.append(("nolog", lf.path))  # type: ignore[arg-type]
            continue
        if seed not in by_seed:
            order.append(seed)
        by_seed.setdefault(seed, []).append(sm)
    seeds: list[SeedMeasure] = []
    for key in order:
        group = by_seed[key]
        chosen = group[0]
        claimed = ev.claims.seed_results.get(key, {}).get("val_bpb") if isinstance(key, int) else None
        if len(group) > 1:
            if not isinstance(claimed, (int, float)) and len(order) == 1 and ev.claims.val_bpb is not None:
                claimed = ev.claims.val_bpb  # one seed: its logs compete for the folder's claim
            if isinstance(claimed, (int, float)):
                chosen = min(group, key=lambda s: abs((s.val_bpb or 0.0) - float(claimed)))
            else:
                # prefer a seedless-named log over "*rerun*" copies only when nothing else decides
                chosen = next((s for s in group if "rerun" not in s.log.lower()), group[0])
            for s in group:
                if s is not chosen:
                    ignored.append({"log": s.log, "why": f"another log of seed {key} ({chosen.log}) was used"})
        seeds.append(chosen)
        used.append(chosen.log)
    m.seeds = seeds
    vals = [s.val_bpb for s in seeds if s.val_bpb is not None]
    if vals:
        m.val_bpb = sum(vals) / len(vals)
    losses = [s.val_loss for s in seeds if s.val_loss is not None]
    if losses and len(losses) == len(vals):
        m.val_loss = sum(losses) / len(losses)
    totals = [s.bytes_total for s in seeds if s.bytes_total is not None]
    if totals:
        m.bytes_total = max(totals)
        m.bytes_source = "logged"
    m.extra["logs_used"] = used
    if ignored:
        m.extra["logs_ignored"] = ignored
    return m
