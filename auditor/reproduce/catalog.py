"""Catalog entries for the findings of the dynamic checks (probes, re-runs, the sandbox), which no
static rule class raises: their codes, titles and `pgolf rule` pages. Static rules keep PG1xx–PG9xx;
these take PG10xx (probes), PG11xx (re-runs) and PG12xx (sandbox)."""
from __future__ import annotations

from dataclasses import dataclass

from auditor.model import Severity

RULES_URL = "https://github.com/openai/parameter-golf/issues/1017"


@dataclass(frozen=True)
class Entry:
    id: str
    code: str
    title: str
    family: str
    severity: Severity
    what: str
    why: str
    fix: str


_E = Entry
ENTRIES = {e.id: e for e in (
    _E("PROBE-SUFFIX-FLIP", "PG1001", "A score committed for an earlier position changed when a later token was flipped", "probe", Severity.ERROR,
       "Runs the record's eval twice on CPU at toy size (through pgolf's CPU layer when the record is CUDA-shaped), the second time "
       "with one later validation token changed, and compares every per-batch or per-token score the eval accumulates.",
       "A score for position t may depend on tokens 0..t only (condition C1 of the eval rules). Two-pass evals, caches filled "
       "ahead, and training on validation before scoring all make earlier scores depend on later tokens.",
       "Score each token from its prefix only, in one left-to-right pass; adapt only on tokens already scored."),
    _E("PROBE-NORMALIZATION", "PG1002", "The scored probabilities at one position do not sum to 1 over the vocabulary", "probe", Severity.ERROR,
       "Calls the scorer with every vocabulary value (or a subset) at the final position and sums exp(-nll).",
       "The score must be -log p of the target under a distribution over the whole vocabulary fixed before the target is "
       "read (condition C2); a subset whose probabilities already sum above 1 proves it broken (target in the key, unnormalised mixing).",
       "Score with a normalised distribution over the whole vocabulary that does not look at the target."),
    _E("PROBE-LEDGER", "PG1003", "A token was fed to a state update before it was scored", "probe", Severity.ERROR,
       "Records, in execution order, every score and every state update (cache add, optimizer step) of the eval and checks that "
       "each position reaches an update only after its score was committed. On a whole record script the validation stream's "
       "positions are followed by value through torch ops, from the optimizer steps' losses to the committed scores of the "
       "reported eval: a position scored after a step was fed it is an error.",
       "Updating a cache or weights with a token before scoring it lets the model see the target (score-before-update).",
       "Score every token before any update that uses it."),
    _E("PROBE-NOT-RUN", "PG1004", "A dynamic probe could not run: the exact reason", "probe", Severity.INFO,
       "Says which probe did not run on this folder and why (no accumulation statement, the script failed at toy size on CPU, "
       "Triton without its interpreter, a timeout), with the last lines of the run.",
       "pgolf never passes what it could not check: a probe that did not run is reported, not counted as a pass.",
       "Make the eval runnable at toy size on CPU (env knobs for sequence length and steps), or expose a score_tokens() scorer."),
    _E("REPRODUCE-FAILED", "PG1101", "The re-run did not complete", "reproduce", Severity.ERROR,
       "The record's command, re-run in the sandbox, exited with an error or timed out.", "A record must reproduce.", "Fix the command or the script."),
    _E("REPRODUCE-MISMATCH", "PG1102", "The re-run's score differs from the claimed score", "reproduce", Severity.ERROR,
       "Compares the re-run's final val_bpb per seed with the logged and claimed values.", "Claims must be reproducible.",
       "Ship the code and configuration that produced the logs."),
    _E("REPRODUCE-BYTES-MISMATCH", "PG1103", "The re-run's artifact size differs from the claim", "reproduce", Severity.ERROR,
       "Compares the artifact bytes of the re-run with the claim.", "The 16 MB limit is on the shipped artifact.", "Report the real size."),
    _E("REPRODUCE-ARTIFACT-16MB", "PG1104", "The re-run's artifact exceeds 16 MB", "reproduce", Severity.ERROR,
       "Measures the artifact the re-run wrote.", "Artifacts are limited to 16,000,000 bytes.", "Shrink the artifact."),
    _E("REPRODUCE-NO-ARTIFACT", "PG1105", "The re-run wrote no artifact", "reproduce", Severity.WARNING,
       "Looks for the serialized model after the re-run.", "Without the artifact its size cannot be checked.", "Write the artifact."),
    _E("REPRODUCE-SIGNIFICANCE", "PG1106", "The re-run's scores do not support the claimed improvement", "reproduce", Severity.WARNING,
       "Tests the re-run seeds against the claim.", "Records must beat the previous record significantly.", "Run more seeds."),
    _E("REPRODUCE-STEP-MATCH", "PG1107", "How the re-run's step count was matched to the logs", "reproduce", Severity.INFO,
       "Reports the step matching used to compare a slower machine with the claim.", "Scores depend on steps reached.", ""),
    _E("REPRODUCE-THROUGHPUT", "PG1108", "The re-run trained at a different speed than the logs", "reproduce", Severity.WARNING,
       "Compares steps per second of the re-run with the logged run.", "The 600 s limit is on the claimed hardware.", ""),
    _E("REPRODUCE-TIMING", "PG1109", "Whether the claimed stop step is reachable in 600 s", "reproduce", Severity.WARNING,
       "Projects the re-run's step time to the claimed hardware.", "Training is limited to 600 s on 8xH100.", ""),
    _E("REPRODUCE-TIME-TRAIN", "PG1110", "The re-run's training exceeded 600 s", "reproduce", Severity.ERROR,
       "Measures training time in the re-run.", "Training is limited to 600 s.", "Stop training within the limit."),
    _E("REPRODUCE-TIME-EVAL", "PG1111", "The re-run's evaluation exceeded 600 s", "reproduce", Severity.ERROR,
       "Measures evaluation time in the re-run.", "Evaluation is limited to 600 s.", "Evaluate within the limit."),
    _E("SANDBOX-DENIED", "PG1201", "The entrant's code tried something the sandbox denies", "sandbox", Severity.ERROR,
       "Reports denied network, file or process operations seen during a sandboxed run.",
       "Submissions may not download or reach outside their folder at run time.", "Remove the access."),
)}


def entry(rule_id: str) -> Entry | None:
    rid = rule_id.upper()
    return ENTRIES.get(rid) or next((e for e in ENTRIES.values() if e.code == rid), None)


def page(rule_id: str, fmt: str = "text") -> str | None:
    """A `pgolf rule` page for a dynamic finding id or code."""
    e = entry(rule_id)
    if e is None:
        return None
    if fmt == "markdown":
        return "\n".join([f"# {e.id} ({e.code})", "", f"*{e.title}* — family `{e.family}`, default severity **{e.severity.value}**", "",
                          "## What it checks", "", e.what, "", "## Why it breaks the rules", "", e.why, "", f"Ruling link: {RULES_URL}", "",
                          "## How to fix", "", e.fix or "(informational)", ""])
    return "\n".join([f"{e.id} ({e.code}): {e.title}", f"family {e.family}, default severity {e.severity.value}", "",
                      "What it checks", f"  {e.what}", "", "Why it breaks the rules", f"  {e.why}", f"  Ruling link: {RULES_URL}", "",
                      "How to fix", f"  {e.fix or '(informational)'}", ""])
