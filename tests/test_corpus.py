"""The parsers and the claims-vs-evidence rules over the real data corpus (records.md §7): 2,321
folders of logs, submission.json and READMEs (code removed).

Done-when of issue 2: zero crashes; the final-score extraction agrees with the claimed val_bpb in at
least as many folders as the spec's reference algorithm (1,066 of 1,410 checkable); every disagreement
is a REPORT-CONSISTENCY finding; the real cases (claims in no log, record-track folders with fewer than
three seeds) are reported.
"""
from __future__ import annotations

import pytest

from auditor.context import AuditOptions
from auditor.model import Severity
from auditor.pipeline import audit_folder
from rules.report_consistency import same, tolerance
from tests.corpus import corpus_rows, record_folder
from tests.helpers import CORPUS

pytestmark = pytest.mark.skipif(not (CORPUS / "INDEX.tsv").is_file(), reason="shared corpus not present")

RULES = {"REPORT-CONSISTENCY", "SUBMISSION-FILES"}


@pytest.fixture(scope="module")
def audited():
    out = []
    crashes = []
    for row in corpus_rows():
        try:
            rec = audit_folder(record_folder(row), AuditOptions(only_rules=set(RULES)))
        except Exception as exc:  # the test reports every crash, not just the first
            crashes.append(f"{row.source}/{row.folder}: {type(exc).__name__}: {exc}")
            continue
        bad = [p.line() for p in rec.errors if "could not" in p.message]
        if bad:
            crashes.extend(bad)
        out.append((row, rec))
    return out, crashes


def test_every_folder_audits_without_a_crash(audited):
    records, crashes = audited
    assert len(records) + len(crashes) == 2321
    assert not crashes, crashes[:10]


def _agrees(rec) -> bool:
    claim = rec.claims.val_bpb
    tol = tolerance(claim)
    m = rec.measured
    return same(m.val_bpb, claim, tol) or any(same(s.val_bpb, claim, tol) for s in m.seeds)


def test_final_score_agrees_with_the_claim_at_least_as_often_as_the_spec(audited):
    records, _ = audited
    checkable = [(row, rec) for row, rec in records if rec.claims.val_bpb is not None and _n_logs(rec)]
    agree = [1 for _, rec in checkable if _agrees(rec)]
    print(f"\ncheckable folders: {len(checkable)}; claim agrees with the measured final: {len(agree)} (spec reference: 1,066 of 1,410)")
    assert len(checkable) >= 1410
    assert len(agree) >= 1066


def test_every_disagreement_is_a_report_consistency_finding(audited):
    records, _ = audited
    silent = []
    for row, rec in records:
        if rec.claims.val_bpb is None or not _n_logs(rec):
            continue
        if _agrees(rec) and len(rec.measured.seeds) <= 1:
            continue
        mine = [f for f in rec.findings if f.rule == "REPORT-CONSISTENCY" and f.severity.rank >= Severity.WARNING.rank
                and "val_bpb" in f.message]
        if not _agrees(rec) and not mine:
            silent.append(f"{row.source}/{row.folder}: claim {rec.claims.val_bpb}, measured {rec.measured.val_bpb}")
    assert not silent, silent[:10]


def _n_logs(rec) -> int:
    """Logs the audit read (used or set aside); folders whose only logs have names discovery does not
    take for logs (``ablation_qat_30pct_v3.txt``) have none and are reported by SUBMISSION-FILES."""
    return len(rec.measured.extra.get("logs_used", [])) + len(rec.measured.extra.get("logs_ignored", []))


def test_claims_in_no_log_are_errors(audited):
    records, _ = audited
    nowhere = [rec for _, rec in records
               if any(f.rule == "REPORT-CONSISTENCY" and f.severity is Severity.ERROR and "matches no value" in f.message for f in rec.findings)]
    print(f"\nfolders whose claim matches no logged value: {len(nowhere)} (spec: 186)")
    # the spec's reference algorithm finds 186; ours reads more claims (synonyms) and more log forms
    assert 130 <= len(nowhere) <= 230
    merged86 = [rec for row, rec in records if row.source == "merged" and row.folder == "2026-03-19_MLP3x_QAT_Int6_SlidingWindow"]
    assert merged86 and merged86[0] in nowhere, "merged #86 claims 1.15015359; its log shows 1.16660881"


def test_record_track_folders_with_fewer_than_three_seeds_are_reported(audited):
    records, _ = audited
    few = [(row, rec) for row, rec in records
           if any(f.rule == "SUBMISSION-FILES" and "distinct seed" in f.message for f in rec.findings)]
    print(f"\nrecord-track folders with fewer than 3 scored seed logs: {len(few)}")
    assert all(row.track == "10min" for row, _ in few)
    assert len(few) >= 300
    names = {(row.source, row.folder) for row, _ in few}
    # merged #1851 ships one seed log (its 3-seed support came from #1868)
    assert ("merged", "2026-04-27_SmearGateBOSFix_PR1787Base_LQERAsym_PhasedTTT") in names
    # ...and a proper 3-seed record is not reported
    assert ("merged", "2026-04-09_A2_Muon097_3Seed") not in names
