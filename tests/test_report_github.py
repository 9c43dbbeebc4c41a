"""`--format github`: workflow-command annotations, escaped by the runner toolkit's rules."""
from __future__ import annotations

import re

from auditor.report import github, render
from tests.report_cases import COMMAND_RE, odd_report, pipeline_report, unescape, write_tree


def _commands(text: str) -> list[re.Match]:
    lines = text.rstrip("\n").split("\n")
    assert lines[-1].startswith("pgolf: ")  # the closing plain-text tally
    out = []
    for line in lines[:-1]:
        m = COMMAND_RE.match(line)
        assert m, f"not a workflow command: {line[:200]!r}"
        out.append(m)
    return out


def _props(m) -> dict[str, str]:
    if not m.group(2):
        return {}
    return {k: unescape(v) for k, v in (item.split("=", 1) for item in m.group(2).split(","))}


def test_escaping_follows_the_toolkit():
    assert github.escape_data("100%\r\nnext: a, b") == "100%25%0D%0Anext: a, b"
    assert github.escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    assert github.command("error", "m", file="x, y:z.py", line=3, title=None) == "::error file=x%2C y%3Az.py,line=3::m"
    assert github.command("notice", "bare") == "::notice::bare"


def test_pipeline_annotations(tmp_path):
    write_tree(tmp_path)
    cmds = _commands(render(pipeline_report(tmp_path), "github"))
    kinds = [m.group(1) for m in cmds]
    assert kinds == sorted(kinds, key=["error", "warning", "notice"].index), "worst first: GitHub keeps 10 of each"
    missing = next(m for m in cmds if unescape(m.group(3)).startswith("2026-01-03_No#Code: missing train_gpt.py"))
    assert missing.group(1) == "error"
    props = _props(missing)
    assert props["title"] == "pgolf SUBMISSION-FILES (PG501)"
    assert props["file"] == "records/track_10min_16mb/2026-01-03_No#Code/submission.json"
    assert (tmp_path / props["file"]).is_file()
    msg = unescape(missing.group(3))
    assert "\nfix: " in msg and "\nruling: https://" in msg
    # The unreadable submission.json becomes a warning on that file.
    unreadable = [m for m in cmds if _props(m).get("title", "").startswith("pgolf: cannot read")]
    assert unreadable and all(m.group(1) == "warning" for m in unreadable)


def test_odd_report_round_trips():
    rep = odd_report(n_extra_folders=30)
    cmds = _commands(render(rep, "github"))
    first = cmds[0]
    assert first.group(1) == "error"
    props = _props(first)
    assert props["line"] == "412" and props["file"] == "records/track_10min_16mb/2026-03-26 Ünïcode #folder%20/train_gpt.py"
    msg = unescape(first.group(3))
    assert msg.startswith("line one\nline two\r\n100% sure: a, b :: c |")  # every character survives the round trip
    assert "  | ```" in msg and "reachability: reachable: NGRAM_EVAL=1 in the log" in msg
    outside = next(m for m in cmds if _props(m).get("title", "").startswith("pgolf TOKENIZER-BPB-ACCOUNTING"))
    assert _props(outside)["file"].endswith("#folder%20/submission.json") and "line" not in _props(outside)
    assert unescape(outside.group(3)).startswith("/opt/tokenizers/tok.model: custom tokenizer")
    huge = next(m for m in cmds if _props(m).get("title", "").startswith("pgolf REPORT-CONSISTENCY"))
    assert "more lines" in unescape(huge.group(3)) and len(huge.group(3)) < 6_000
    waived = [m for m in cmds if _props(m).get("title", "").endswith("[waived]")]
    assert len(waived) == 1 and waived[0].group(1) == "notice" and cmds[-1] is waived[0]  # waived come last
    live_notices = [_props(m)["title"] for m in cmds if m.group(1) == "notice" and m is not waived[0]]
    assert live_notices == ["pgolf SUBMISSION-FILES"]  # the one info finding
    text = render(rep, "github")
    assert "GitHub shows 10 annotations of each kind" in text.rstrip().rsplit("\n", 1)[-1]
