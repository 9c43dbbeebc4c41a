"""DATA-*/NET-*: where in the program training data, validation data and the network are touched."""
from __future__ import annotations

from auditor.discover import discover
from auditor.evidence import read_evidence
from auditor.context import AuditContext
from rules.data_access import data_facts
from rules.data_no_train_at_eval import _CLEAN, _EVAL_READS_TRAIN
from tests.helpers import audit_one, write_folder
import textwrap


def _facts(tmp_path, src):
    folder = write_folder(tmp_path, {"train_gpt.py": textwrap.dedent(src).lstrip("\n")})
    return data_facts(AuditContext(evidence=read_evidence(discover([folder]).folders[0])))


def test_training_loop_and_post_training_region(tmp_path):
    df = _facts(tmp_path, _EVAL_READS_TRAIN)
    assert df.loop and df.loop.func == "main"
    reads = df.of("train-read")
    assert [a.func for a in reads if a.after_training] == ["eval_with_prior"]


def test_loader_in_the_loop_is_not_an_eval_read(tmp_path):
    assert not [a for a in _facts(tmp_path, _CLEAN).of("train-read") if a.after_training]


def test_download_in_a_prep_script_not_run_is_clean(tmp_path):
    folder = write_folder(tmp_path, {"train_gpt.py": textwrap.dedent(_CLEAN).lstrip("\n"),
                                     "cached_challenge_fineweb.py": "import urllib.request\nurllib.request.urlretrieve('http://x', 'y')\n"})
    rec = audit_one(folder, only_rules={"NET-NO-DOWNLOAD"})
    assert not [f for f in rec.findings if f.rule == "NET-NO-DOWNLOAD"]


def test_curl_in_subprocess_after_training_is_an_error(tmp_path):
    src = textwrap.dedent(_CLEAN).lstrip("\n").replace("def eval_val(model, tokens):\n",
                                                       "def eval_val(model, tokens):\n    import subprocess\n    subprocess.run(['curl', '-O', 'http://x/t.npz'])\n")
    rec = audit_one(write_folder(tmp_path, {"train_gpt.py": src}), only_rules={"NET-NO-DOWNLOAD"})
    assert any(f.severity.value == "error" and "curl" in f.message for f in rec.findings)
