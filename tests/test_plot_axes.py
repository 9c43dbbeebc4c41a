"""`pgolf plot` on a run of a fraction of a second (the CI preset): the time panels scale to the
run instead of a fixed 0-600 s axis, and points left above the y-axis are counted on the plot."""
from __future__ import annotations

from auditor import plot
from auditor.discover import discover
from tests.helpers import write_folder
from tests.test_plot import record  # noqa: F401  (fixture)


def _short_log() -> str:
    lines = ["seed:1337", "step:0/6 val_loss:6.0 val_bpb:7.5 train_time:0ms step_avg:0.01ms"]
    for step in range(1, 7):
        lines.append(f"step:{step}/6 train_loss:{6.0 - step * 0.01:.4f} train_time:{step * 90}ms step_avg:90.00ms")
    lines += ["step:6/6 val_loss:5.9 val_bpb:7.0 train_time:545ms step_avg:90.00ms",
              "final_int8_zlib_roundtrip_exact val_loss:5.90000000 val_bpb:7.03590000"]
    return "\n".join(lines) + "\n"


def test_a_short_run_gets_its_own_time_axis(tmp_path):
    folder = write_folder(tmp_path, {"train_seed1337.log": _short_log()}, name="2026-01-01_Ci")
    fig = plot.render_png(plot.curves(discover([folder]).folders[0]), tmp_path / "ci.png")
    for ax in (fig.axes[1], fig.axes[3]):
        lo, hi = ax.get_xlim()
        assert lo == 0 and 0.5 < hi < 1.0  # not 0-624 s: the points fill the panel
        assert any("600 s training cap off the axis (runs end by 0.545 s)" == t.get_text() for t in ax.texts)
        assert not any(list(line.get_xdata()) == [600.0, 600.0] for line in ax.get_lines())


def test_points_above_the_axis_are_counted(record, tmp_path):  # noqa: F811
    fig = plot.render_png(plot.curves(discover([record]).folders[0]), tmp_path / "p.png")
    val_step, val_time = fig.axes[2], fig.axes[3]
    # the step-0 evals (4.0 bpb) of three seeds run off the top on purpose; the plot says so
    assert [t.get_text() for t in val_step.texts] == ["3 early points above the axis (up to 4)"]
    assert any(t.get_text().startswith("3 early points") for t in val_time.texts)
    assert not any("early point" in t.get_text() for t in fig.axes[0].texts)  # train losses all fit
