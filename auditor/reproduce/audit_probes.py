"""`pgolf audit --probe`: the dynamic probes after the static rules, for folders whose static verdict
is fail or needs review (``--probe-all``: every folder). Each folder's probe runs in bubblewrap with
the network off (never in pgolf's own process); without a working sandbox the probes do not run and
every selected folder says so (PROBE-NOT-RUN), never a silent pass."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from auditor.model import VERDICT_FAIL, VERDICT_PASS, VERDICT_REVIEW, Report, Severity
from auditor.reproduce.probe_outcome import probe_finding

PROBE_TIMEOUT_S = 180.0


def add_probes(report: Report, *, all_folders: bool = False, timeout_s: float = PROBE_TIMEOUT_S) -> int:
    """Probe the selected records of ``report`` in place; returns how many were probed."""
    from auditor.reproduce.probes import probe_record
    from auditor.reproduce.sandbox import bwrap_works

    ok, why = bwrap_works()
    chosen = [r for r in report.records if all_folders or r.verdict in (VERDICT_FAIL, VERDICT_REVIEW)]
    tok_cache = Path(tempfile.mkdtemp(prefix="pgolf-probe-tok-"))
    try:
        for rec in chosen:
            folder = Path(rec.path) if Path(rec.path).is_absolute() else Path(report.root) / rec.path
            if not ok:
                found = [probe_finding("PROBE-NOT-RUN", Severity.WARNING, "", None, f"no sandbox available ({why}): the probes execute "
                                       "the record's code and run only inside bubblewrap", [], "install bubblewrap (bwrap)")]
            elif not folder.is_dir() or folder.is_symlink():
                found = [probe_finding("PROBE-NOT-RUN", Severity.INFO, "", None, f"{rec.path} is not a folder on disk (read from git?): "
                                       "the probes need a checkout", [], "")]
            else:
                work = Path(tempfile.mkdtemp(prefix="pgolf-audit-probe-"))
                try:
                    found = probe_record(folder, sandbox="bwrap", work=work, timeout_s=timeout_s, tok_cache=tok_cache).findings
                finally:
                    shutil.rmtree(work, ignore_errors=True)
            rec.findings.extend(found)
            worst = rec.worst()
            if worst is Severity.ERROR:
                rec.verdict = VERDICT_FAIL
            elif worst is Severity.WARNING and rec.verdict == VERDICT_PASS:
                rec.verdict = VERDICT_REVIEW
    finally:
        shutil.rmtree(tok_cache, ignore_errors=True)
    return len(chosen)
