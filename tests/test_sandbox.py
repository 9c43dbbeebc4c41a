"""The bubblewrap sandbox: a record that reaches for the network or writes outside its run dir fails clearly."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from auditor.reproduce.main import ReproduceOptions, reproduce
from auditor.reproduce.sandbox import bwrap_works
from tests.reproduce_helpers import make_data, make_record

SANDBOX_OK, SANDBOX_WHY = bwrap_works()
pytestmark = pytest.mark.skipif(not SANDBOX_OK, reason=f"no usable bubblewrap here: {SANDBOX_WHY}")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data"))


def _run(folder: Path, run_dir: Path, capsys, data) -> tuple[int, dict]:
    code = reproduce(ReproduceOptions(record=str(folder), run_dir=str(run_dir), quiet=True, fmt="json", nproc=1,
                                      data=str(data[0]), tokenizer=str(data[1])))
    return code, json.loads(capsys.readouterr().out)["records"][0]


def test_a_network_lookup_is_refused(tmp_path, data, capsys):
    # a reserved name (RFC 2606 .invalid): no address anywhere is ever a target of this test
    folder = make_record(tmp_path, *data, seeds=(1,), extra_env="FIXTURE_CONNECT=pgolf-sandbox-test.invalid:80 ")
    code, rec = _run(folder, tmp_path / "run", capsys, data)
    assert code == 1
    denied = [f for f in rec["findings"] if f["rule"] == "SANDBOX-DENIED"]
    assert denied and "tried to open a network connection" in denied[0]["message"]
    assert any("name resolution" in e or "not known" in e for e in denied[0]["evidence"])


def test_the_host_loopback_is_out_of_reach(tmp_path, data, capsys):
    """A listener on the host's 127.0.0.1 gets no connection: the sandbox has a loopback of its own."""
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.5)
    port = srv.getsockname()[1]
    try:
        folder = make_record(tmp_path, *data, seeds=(1,), extra_env=f"FIXTURE_CONNECT=127.0.0.1:{port} ")
        code, rec = _run(folder, tmp_path / "run", capsys, data)
        try:
            conn, _ = srv.accept()
            conn.close()
            reached = True
        except (socket.timeout, TimeoutError):
            reached = False
    finally:
        srv.close()
    assert not reached
    assert code == 1  # the connection was refused inside, so the run failed
    assert any(f["rule"] == "REPRODUCE-FAILED" for f in rec["findings"])


def test_write_outside_the_run_dir_is_refused(tmp_path, data, capsys):
    # /tmp is private inside the sandbox (writes there vanish), so aim at a real folder outside it
    outside = [p for p in (Path.home(), Path(__file__).resolve().parents[1]) if not str(p).startswith("/tmp")]
    if not outside:
        pytest.skip("no folder outside /tmp to aim at")
    target = outside[0] / f"pgolf-escape-{uuid.uuid4().hex}.txt"
    folder = make_record(tmp_path, *data, seeds=(1,), extra_env=f"FIXTURE_WRITE={target} ")
    try:
        code, rec = _run(folder, tmp_path / "run", capsys, data)
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)
    assert code == 1
    denied = [f for f in rec["findings"] if f["rule"] == "SANDBOX-DENIED"]
    assert denied and "write outside its run directory" in denied[0]["message"]
    assert any("Read-only file system" in e and str(target) in e for e in denied[0]["evidence"])
