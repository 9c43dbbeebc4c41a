"""Suite-wide guard: a test may skip only when tests/skips_allowed.txt names it, so a fixture that
silently stops existing (a path of one machine, a tool that is not installed) fails the run instead
of turning the suite green by skipping."""
from __future__ import annotations

import fnmatch
from pathlib import Path

ALLOW_FILE = Path(__file__).with_name("skips_allowed.txt")


def _allowed() -> list[str]:
    out = []
    for line in ALLOW_FILE.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line.split()[0])
    return out


_SKIPPED: set[str] = set()


def pytest_runtest_logreport(report):
    # under xdist the controller sees every worker's reports through this hook too
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPPED.add(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    if hasattr(config, "workerinput") or config.getoption("collectonly", False):
        return
    patterns = _allowed()
    unexpected = sorted({n for n in _SKIPPED if not any(fnmatch.fnmatch(n, p) for p in patterns)})
    if unexpected:
        tr = config.pluginmanager.get_plugin("terminalreporter")
        lines = ["", f"{len(unexpected)} test(s) skipped that tests/skips_allowed.txt does not allow:"] + [f"  {n}" for n in unexpected]
        if tr is not None:
            for line in lines:
                tr.write_line(line)
        if session.exitstatus == 0:
            session.exitstatus = 1
