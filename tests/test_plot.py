"""`pgolf plot DIR`: curves read from our own logs, drawn on the Agg canvas, written as a PNG."""
from __future__ import annotations

import subprocess
import sys

import pytest

from auditor import plot
from auditor.discover import discover
from tests.helpers import write_folder


def _log_classic(seed: int, offset: float) -> str:
    """The baseline script's format: step:N/T with train_time in ms, a stop line, a final eval."""
    lines = [f"seed:{seed}", "world_size:8 grad_accum_steps:1", "warmup_step:1/20",
             "step:0/1000 val_loss:6.9000 val_bpb:4.0000 train_time:0ms step_avg:0.01ms"]
    for step in range(100, 1001, 100):
        lines.append(f"step:{step}/1000 train_loss:{3.0 - step / 1000 + offset:.4f} train_time:{step * 590}ms step_avg:590.00ms")
        if step % 500 == 0:
            lines.append(f"step:{step}/1000 val_loss:2.1 val_bpb:{1.4 - step / 5000 + offset:.4f} train_time:{step * 590 + 20}ms step_avg:590.00ms")
    lines += ["stopping_early: wallclock_cap train_time:590020ms step:1000/1000",
              f"final_int8_zlib_roundtrip_exact val_loss:2.00000000 val_bpb:{1.2 + offset:.8f}"]
    return "\n".join(lines) + "\n"


def _log_minutes(seed: int) -> str:
    """The later format: no "step:" prefix, train_time in minutes, val lines without a time."""
    return (f"seed: {seed}\n0/500 val_loss: 9.0 val_bpb: 3.5\n1/500 train_loss: 9.0 train_time: 0.0m tok/s: 1\n"
            "250/500 train_loss: 3.2 train_time: 4.9m tok/s: 1\n250/500 val_loss: 2.9 val_bpb: 1.15\n"
            "500/500 train_loss: 2.9 train_time: 9.8m tok/s: 1\n500/500 val_loss: 2.8 val_bpb: 1.10\n")


@pytest.fixture()
def record(tmp_path):
    files = {f"train_seed{s}.log": _log_classic(s, 0.001 * i) for i, s in enumerate((7, 42, 1337))}
    files["train.log"] = files["train_seed42.log"]  # a copied log must not draw a fourth line
    files["submission.json"] = '{"author": "t", "github_id": "t", "val_bpb": 1.2010}\n'
    files["README.md"] = "# r\n"
    files["train_gpt.py"] = "print('x')\n"
    return write_folder(tmp_path, files, name="2026-01-01_Plot")


def test_curves_from_logs(record):
    c = plot.curves(discover([record]).folders[0])
    assert c.claimed_bpb == pytest.approx(1.2010)
    assert [s.label for s in c.series] == ["seed 7", "seed 42", "seed 1337"]
    s = c.series[0]
    assert [p[0] for p in s.train] == list(range(100, 1001, 100))
    assert s.train[0] == (100, pytest.approx(59.0), pytest.approx(2.9))
    assert [(p[0], p[2]) for p in s.val] == [(0, 4.0), (500, pytest.approx(1.3)), (1000, pytest.approx(1.2))]
    assert s.val[-1][1] == pytest.approx(590.02)


def test_minutes_format_and_interpolated_times(tmp_path):
    folder = write_folder(tmp_path, {"train_seed3.log": _log_minutes(3)}, name="2026-01-02_Minutes")
    c = plot.curves(discover([folder]).folders[0])
    (s,) = c.series
    assert [(p[0], p[1]) for p in s.train] == [(1, 0.0), (250, pytest.approx(294.0)), (500, pytest.approx(588.0))]
    # val lines carry no time: they get the time of the same step from the train lines
    assert [(p[0], p[1], p[2]) for p in s.val] == [(0, None, 3.5), (250, pytest.approx(294.0), 1.15), (500, pytest.approx(588.0), 1.10)]


def test_png_marks_cap_and_claim(record, tmp_path):
    c = plot.curves(discover([record]).folders[0])
    out = tmp_path / "out" / "p.png"
    fig = plot.render_png(c, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(out.read_bytes()[16:20], "big"), int.from_bytes(out.read_bytes()[20:24], "big")
    assert (width, height) == (1320, 880)
    axes = fig.axes
    assert [ax.get_xlabel() for ax in axes] == ["step", "training time (s)", "step", "training time (s)"]
    for ax in (axes[1], axes[3]):  # the time axes show the cap
        assert any(list(line.get_xdata()) == [600.0, 600.0] for line in ax.get_lines())
    for ax in (axes[2], axes[3]):  # the val axes show the claim
        assert any(list(line.get_ydata()) == [pytest.approx(1.2010)] * 2 for line in ax.get_lines())
        assert any(t.get_text() == "claimed 1.2010" for t in ax.get_legend().get_texts())
    lo, hi = axes[2].get_ylim()
    assert lo < 1.2 < 1.3 < hi < 4.0  # the step-0 eval (4.0 bpb) does not squash the curve


def test_cli_plot(record, tmp_path):
    out = tmp_path / "curves.png"
    proc = subprocess.run([sys.executable, "-m", "auditor", "plot", str(record), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 10_000 and "3 run(s)" in proc.stdout
    # A tree of folders: one PNG per folder into a directory; a folder without step lines is one line, exit 2.
    write_folder(tmp_path, {"README.md": "# no logs\n", "train.log": "hello\n"}, name="2026-01-03_Empty")
    outdir = tmp_path / "pngs"
    outdir.mkdir()
    proc = subprocess.run([sys.executable, "-m", "auditor", "plot", str(tmp_path / "records"), "-o", str(outdir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert sorted(p.name for p in outdir.iterdir()) == ["2026-01-01_Plot.png"]
    assert "2026-01-03_Empty: no step lines" in proc.stderr and "Traceback" not in proc.stderr


def test_audit_does_not_import_matplotlib():
    code = "import sys, auditor.cli, auditor.pipeline; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
