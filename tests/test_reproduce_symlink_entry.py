"""The reproduction plan never follows an entrant's symlinked entry script (a link could make pgolf
read, and plan from, any file of the reviewer's machine)."""
from __future__ import annotations

from auditor.reproduce.plan import build_plan
from tests.reproduce_helpers import make_data, make_record


def test_symlinked_entry_script_is_not_read(tmp_path):
    data = make_data(tmp_path / "data")
    folder = make_record(tmp_path / "recs", *data, seeds=(1,))
    plain = build_plan(folder, run_dir=tmp_path / "r0")
    assert plain.needs.env_reads, "the fixture's script reads env knobs: the plan sees them when the file is regular"
    host = tmp_path / "host_file.py"
    host.write_text('import os\nSECRET = os.environ["PGOLF_HOST_ONLY_KNOB"]\n')
    entry = folder / "train_gpt.py"
    entry.unlink()
    entry.symlink_to(host)
    plan = build_plan(folder, run_dir=tmp_path / "r1")
    assert "PGOLF_HOST_ONLY_KNOB" not in plan.needs.env_reads
    assert plan.needs.env_reads == {}


def test_symlink_inside_the_folder_is_not_followed_either(tmp_path):
    data = make_data(tmp_path / "data")
    folder = make_record(tmp_path / "recs", *data, seeds=(1,))
    entry = folder / "train_gpt.py"
    (folder / "real.py").write_text('import os\nX = os.environ["PGOLF_INSIDE_KNOB"]\n')
    entry.unlink()
    entry.symlink_to(folder / "real.py")
    assert "PGOLF_INSIDE_KNOB" not in build_plan(folder, run_dir=tmp_path / "r").needs.env_reads
