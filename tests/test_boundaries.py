"""The limits themselves, at the exact boundary: 16,000,000 bytes, 600 s of training, p at α.

Each pair differs by the smallest step the rule can see, so an off-by-one (`>=` for `>`, a cap
lowered by a few bytes, `<=` for `<` on α) fails one side of the pair.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from auditor.model import Severity, Stats
from auditor.stats import PRACTICE_ALPHA, README_ALPHA
from rules.stats_significance import StatsSignificance
from rules.time_logs import three_seeds
from tests.helpers import audit_one, write_folder

ENTRY = "print(1)\n"  # 9 shipped bytes: the whole measured code


def _artifact_findings(tmp_path, total: int):
    files = {"train_gpt.py": ENTRY, **three_seeds(model=total - len(ENTRY), code=len(ENTRY))}
    rec = audit_one(write_folder(tmp_path, files), only_rules={"ARTIFACT-16MB"})
    return [f for f in rec.findings if f.rule == "ARTIFACT-16MB"]


def test_artifact_exactly_16_000_000_bytes_is_within_the_cap(tmp_path):
    assert _artifact_findings(tmp_path, 16_000_000) == []


def test_artifact_one_byte_over_is_an_error(tmp_path):
    found = _artifact_findings(tmp_path, 16_000_001)
    assert [f.severity for f in found] == [Severity.ERROR]
    assert "over 16,000,000 by 1" in found[0].message


def _train_findings(tmp_path, train_ms: int, **kw):
    rec = audit_one(write_folder(tmp_path, {"train_gpt.py": ENTRY, **three_seeds(train_ms=train_ms, **kw)}),
                    only_rules={"TIME-TRAIN-600"})
    return [f for f in rec.findings if f.rule == "TIME-TRAIN-600"]


def test_train_time_exactly_600_s_is_silent(tmp_path):
    assert _train_findings(tmp_path, 600_000) == []


def test_train_time_one_ms_over_is_a_tolerated_overshoot(tmp_path):
    found = _train_findings(tmp_path, 600_001)
    assert {f.severity for f in found} == {Severity.INFO} and len(found) == 3  # one per seed


def test_train_time_overshoot_tolerance_ends_at_one_step(tmp_path):
    assert {f.severity for f in _train_findings(tmp_path / "a", 602_000)} == {Severity.INFO}
    assert {f.severity for f in _train_findings(tmp_path / "b", 602_001)} == {Severity.ERROR}


def test_train_time_600_1_s_is_past_the_cap(tmp_path):
    found = _train_findings(tmp_path, 600_100)
    assert found and all("600,100 ms is 100 ms past" in f.message for f in found)


def test_gpu_seconds_exactly_8_by_600_pass_and_a_hair_more_fails(tmp_path):
    at = _train_findings(tmp_path / "a", 599_000, world_size=4, cap_s=1200.0)  # 4 × 1200 = 4800 GPU·s: informational only
    assert [f.severity for f in at] == [Severity.INFO] * 3
    assert "stays within 8 × 600" in at[0].message
    over = _train_findings(tmp_path / "b", 599_000, world_size=8, cap_s=600.01)
    assert [f.severity for f in over] == [Severity.ERROR] * 3
    assert "4800.08 GPU·s" in over[0].message


def _significance(p_practice: float, p_readme: float, rulebook: str = "2026-04-28"):
    st = Stats(n_seeds=3, against="prev", p_practice=p_practice, p_readme=p_readme, delta_nats=0.01)
    st.extra.update({"rulebook": rulebook, "against_seeds": [1, 2, 3]})
    ctx = SimpleNamespace(stats=st, evidence=SimpleNamespace(folder=SimpleNamespace(track="10min")))
    return list(StatsSignificance().check(ctx))


@pytest.mark.parametrize("rulebook,alpha", [("2026-04-28", PRACTICE_ALPHA), ("2026-03-18", README_ALPHA)])
def test_p_exactly_at_alpha_is_not_significant(rulebook, alpha):
    at = _significance(alpha, alpha, rulebook)
    below = _significance(alpha * 0.999, alpha * 0.999, rulebook)
    assert [f.severity for f in at] == [Severity.ERROR]
    assert "fails the" in at[0].message
    assert [f.severity for f in below] == [Severity.INFO]
    assert "passes the" in below[0].message


def test_the_alphas_are_the_published_ones():
    assert (PRACTICE_ALPHA, README_ALPHA) == (0.25, 0.01)
