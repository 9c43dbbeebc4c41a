"""The CLI matrix: every documented option of the user-facing commands is exercised by some test,
and the options no other test reaches are exercised here with an observable effect."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from auditor import __version__
from auditor.cli import app
from tests.helpers import write_folder
from tests.report_cases import write_tree

TESTS = Path(__file__).parent
COVERED = ("audit", "reproduce", "probe", "train", "plot", "rule", "rules", "leaderboard", "config")
ENV = {"PGOLF_IN_PROCESS": "1", "NO_COLOR": "1", "COLUMNS": "120"}


def _commands() -> dict[str, object]:
    """Every command and subcommand by its full name ('' is `pgolf` itself)."""
    out: dict[str, object] = {}

    def walk(cmd, prefix):
        out[" ".join(prefix)] = cmd
        for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
            walk(sub, prefix + [name])

    walk(typer.main.get_command(app), [])
    return out


# an option entry of click's --help: two spaces in, then `-x, --long` or `--flag / --no-flag`
_HELP_OPTION = re.compile(r"^  (?:-\w, )?(--[\w-]+)(?: / (--[\w-]+))?", re.M)


def _help_options(name: str) -> set[str]:
    """The long options `pgolf <name> --help` prints, both forms of a boolean flag included."""
    r = CliRunner().invoke(app, [*name.split(), "--help"], env=ENV)
    assert r.exit_code == 0, r.output
    section = r.stdout.split("\nOptions:\n", 1)[1].split("\nCommands:\n", 1)[0]
    return {o for m in _HELP_OPTION.finditer(section) for o in m.groups() if o} - {"--help"}


def _options() -> dict[str, set[str]]:
    return {name: _help_options(name) for name in _commands() if name == "" or name.split()[0] in COVERED}


def test_the_help_output_shows_every_option_the_commands_take():
    """The matrix below reads the options from `--help` (what a user sees): it must be every option the
    command accepts, so that none escapes the check by being hidden or printed in another form."""
    opts = _options()
    assert {"--version"} == opts[""]
    assert {"--fail-on", "--waivers", "--rulebook", "--against", "--probe-all", "--format"} <= opts["audit"]
    assert {"--match-steps", "--no-match-steps", "--replay-clock", "--no-replay-clock"} <= opts["reproduce"]
    for name, cmd in _commands().items():
        if name in opts:
            params = {o for p in cmd.params if getattr(p, "param_type_name", "") == "option"
                      for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}
            assert opts[name] == params, name


def test_every_documented_option_is_exercised_by_a_test():
    corpus = "\n".join(p.read_text(encoding="utf-8") for p in TESTS.glob("test_*.py") if p.name != Path(__file__).name)
    corpus += "\n" + Path(__file__).read_text(encoding="utf-8").split("# -- exercised here --", 1)[1]
    missing = [f"pgolf {cmd} {opt}".replace("  ", " ") for cmd, opts in sorted(_options().items())
               for opt in sorted(opts) if not re.search(rf"[\"']{re.escape(opt)}(=|[\"'])", corpus)]
    assert not missing, f"options no test exercises: {missing}"


# -- exercised here --


def run(*args: str):
    return CliRunner().invoke(app, list(args), env=ENV)


def test_version_prints_the_package_version():
    r = run("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"pgolf {__version__}"


def test_version_through_the_installed_entry_point():
    r = subprocess.run([sys.executable, "-P", "-m", "auditor", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"pgolf {__version__}"


@pytest.fixture()
def tree(tmp_path, monkeypatch):
    folders = write_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    return {k: str(v.relative_to(tmp_path)) for k, v in folders.items()}


def test_fail_on_info_fails_on_an_info_finding(tree):
    r_json = run("audit", "-q", tree["pass"], "--format", "json", "--fail-on", "info")
    doc = json.loads(r_json.stdout)
    infos = [f for rec in doc["records"] for f in rec["findings"] if f["severity"] == "info" and not f.get("waived")]
    assert infos, "the clean folder still carries an info (no --against): --fail-on info must fail it"
    assert r_json.exit_code == 1
    assert run("audit", "-q", tree["pass"], "--format", "json").exit_code == 0  # the same folder passes at the default level


def test_extend_select_adds_to_the_selection(tree):
    base = json.loads(run("audit", "-q", "records", "--format", "json", "--select", "SUBMISSION-FILES", "--fail-on", "never").stdout)
    more = json.loads(run("audit", "-q", "records", "--format", "json", "--select", "SUBMISSION-FILES",
                          "--extend-select", "STATS-SIGNIFICANCE", "--fail-on", "never").stdout)
    rules_base = {f["rule"] for r in base["records"] for f in r["findings"]}
    rules_more = {f["rule"] for r in more["records"] for f in r["findings"]}
    assert rules_base == {"SUBMISSION-FILES"}
    assert rules_more == {"SUBMISSION-FILES", "STATS-SIGNIFICANCE"}


def test_config_file_sets_the_fail_on_level(tree, tmp_path):
    cfg = tmp_path / "strict.toml"
    cfg.write_text('fail-on = "warning"\n', encoding="utf-8")
    plain = run("audit", "-q", tree["needs-review"], "--select", "SUBMISSION-FILES")
    strict = run("audit", "-q", tree["needs-review"], "--select", "SUBMISSION-FILES", "--config", str(cfg))
    assert plain.exit_code == 0
    assert strict.exit_code == 1, strict.output
    shown = run("config", "--config", str(cfg))
    assert shown.exit_code == 0 and "warning" in shown.stdout and "strict.toml" in shown.stdout


def test_rulebook_decides_which_test_counts(tmp_path):
    from tests.test_stats import PR1493, PR1514
    from rules.time_logs import baseline_log

    prev = write_folder(tmp_path, {f"train_seed{s}.log": baseline_log(s, b, l) for s, (b, l) in PR1493.items()}, name="2026-04-01_Prev")
    new = write_folder(tmp_path, {f"train_seed{s}.log": baseline_log(s, b, l) for s, (b, l) in PR1514.items()}, name="2026-04-02_New")
    args = ["audit", "-q", str(new), "--select", "STATS-SIGNIFICANCE", "--against", str(prev), "--format", "json"]
    practice = json.loads(run(*args).stdout)["records"][0]
    readme = json.loads(run(*args, "--rulebook", "2026-03-18").stdout)["records"][0]
    sev = lambda rec: [f["severity"] for f in rec["findings"] if f["rule"] == "STATS-SIGNIFICANCE"]  # noqa: E731
    assert sev(practice) == ["info"]  # p_practice 0.0203 < 0.25
    assert sev(readme) == ["error"]  # 0.003 nats: under the README's 0.005-nat margin
    assert practice["stats"]["against"].endswith("2026-04-01_Prev")


REF_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "records" / "track_10min_16mb" / "2026-11-04_Reference_Tiny"


def test_reproduce_dry_run_shows_each_option(tmp_path):
    """The plan is where reproduce's options show before anything runs."""
    base = ["reproduce", str(REF_EXAMPLE), "--dry-run", "--no-sandbox", "--run-dir", str(tmp_path / "run")]
    r = run(*base, "--seeds", "7,8", "--nnodes", "1", "--rdzv-endpoint", "127.0.0.1:29555", "--rdzv-backend", "static",
            "--target", "8xH100", "--no-match-steps", "--no-replay-clock")
    out = r.stdout
    assert re.search(r"^seeds\s+7, 8\s+\(--seeds\)$", out, re.M), out
    assert "--rdzv-backend=static" in out and "--rdzv-endpoint=127.0.0.1:29555" in out
    assert re.search(r"^target\s+8xH100", out, re.M)
    assert "seed 7: as documented" in out
    replay = run(*base, "--seeds", "42", "--replay-clock").stdout
    steps = run(*base, "--seeds", "42", "--match-steps", "--no-replay-clock").stdout
    raw = run(*base, "--seeds", "42", "--no-match-steps", "--no-replay-clock").stdout
    stop = lambda text: text.split("stop step", 1)[1].split("\n")[1].strip()  # noqa: E731
    assert len({stop(replay), stop(steps), stop(raw)}) == 3, (stop(replay), stop(steps), stop(raw))
    assert stop(replay).startswith("seed 42: replayed clock at ")
    assert stop(steps).startswith("seed 42: step-matched: ITERATIONS=18 MAX_WALLCLOCK_SECONDS=0")
    assert stop(raw) == "seed 42: as documented (--no-match-steps)"


def test_preflight_lists_only_the_modules_that_import(tmp_path):
    r = run("reproduce", str(REF_EXAMPLE), "--dry-run", "--no-sandbox", "--run-dir", str(tmp_path / "run"))
    (line,) = [x for x in r.stdout.splitlines() if x.split()[1:2] == ["imports"]]
    import importlib.util

    if importlib.util.find_spec("flash_attn") is None:
        head, _, optional = line.partition("; optional, not installed:")
        assert "flash_attn" not in head and "flash_attn" in optional, line
