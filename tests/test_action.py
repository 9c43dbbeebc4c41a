"""The composite action (action.yml), run end to end on a real git repository with the GitHub
environment variables pointing at temporary files; and the example workflows."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from tests.ci_helpers import make_pr_repo

REPO = Path(__file__).resolve().parents[1]
ACTION = REPO / "action.yml"
EXAMPLES = REPO / "examples" / "github"
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
ANNOTATION = re.compile(r"^::(error|warning|notice) (file=[^,:]+(?:,line=\d+)?(?:,endLine=\d+)?(?:,col=\d+)?(?:,endColumn=\d+)?),title=([^:]+)::(.+)$")


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _on(doc: dict) -> dict:
    return doc.get("on", doc.get(True))  # PyYAML reads a bare `on:` key as True


# ---- a small runner for composite actions: enough of GitHub's semantics to run ours ---------------

class Runner:
    """Runs the `run:` steps of a composite action with bash, resolving `${{ }}` in `env:`, `with:`
    and `if:` the way GitHub does; `uses:` steps are recorded (their inputs resolved) instead of
    being downloaded."""

    def __init__(self, action: dict, inputs: dict[str, str], contexts: dict, env: dict[str, str], skip: set[str]):
        declared = action["inputs"]
        self.inputs = {k: str(v.get("default", "")) for k, v in declared.items()}
        self.inputs = {k: self.resolve(v, contexts) for k, v in self.inputs.items()}  # defaults may be expressions
        unknown = set(inputs) - set(declared)
        assert not unknown, f"not inputs of the action: {unknown}"
        self.inputs.update(inputs)
        self.action, self.contexts, self.env, self.skip = action, contexts, env, skip
        self.outputs: dict[str, dict[str, str]] = {}
        self.uses: list[tuple[str, dict[str, str]]] = []
        self.failed = False
        self.log: list[str] = []

    def value(self, path: str, contexts: dict | None = None):
        ctx = {**(contexts or self.contexts), "inputs": getattr(self, "inputs", {}),
               "steps": {k: {"outputs": v} for k, v in getattr(self, "outputs", {}).items()}}
        cur = ctx
        for part in path.split("."):
            cur = cur.get(part, "") if isinstance(cur, dict) else ""
        return cur

    def evaluate(self, expr: str, contexts: dict | None = None):
        expr = expr.strip()
        if "&&" in expr:
            return all(self.evaluate(t, contexts) for t in expr.split("&&"))
        if expr == "always()":
            return True
        if expr in ("success()",):
            return not self.failed
        m = re.fullmatch(r"([\w.\-]+)\s*(==|!=)\s*'([^']*)'", expr)
        if m:
            left = str(self.value(m.group(1), contexts))
            return (left == m.group(3)) if m.group(2) == "==" else (left != m.group(3))
        assert re.fullmatch(r"[\w.\-]+", expr), f"expression this runner does not know: {expr!r}"
        return self.value(expr, contexts)

    def resolve(self, text: str, contexts: dict | None = None) -> str:
        return EXPR.sub(lambda m: str(self.evaluate(m.group(1), contexts)), str(text))

    def run(self) -> None:
        for step in self.action["runs"]["steps"]:
            cond = step.get("if", "success()")
            if not self.evaluate(EXPR.sub(lambda m: m.group(1), str(cond))):
                self.log.append(f"skipped: {step.get('name')}")
                continue
            if step.get("name") in self.skip:
                self.log.append(f"not run here: {step.get('name')}")
                continue
            if "uses" in step:
                self.uses.append((step["uses"], {k: self.resolve(v) for k, v in (step.get("with") or {}).items()}))
                continue
            assert step.get("shell") == "bash"
            out_file = Path(self.env["RUNNER_TEMP"]) / f"output-{len(self.log)}"
            out_file.write_text("")
            env = {**os.environ, **self.env, **{k: self.resolve(v) for k, v in (step.get("env") or {}).items()},
                   "GITHUB_OUTPUT": str(out_file)}
            proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], env=env, cwd=self.env["GITHUB_WORKSPACE"],
                                  capture_output=True, text=True, timeout=300)
            self.log.append(f"ran: {step.get('name')} -> {proc.returncode}")
            if step.get("id"):
                self.outputs[step["id"]] = dict(line.split("=", 1) for line in out_file.read_text().splitlines() if "=" in line)
                self.stdout, self.stderr = proc.stdout, proc.stderr
            if proc.returncode != 0:
                self.failed = True
                self.last_error = proc.stdout + proc.stderr


@pytest.fixture()
def gh_env(tmp_path):
    t = make_pr_repo(tmp_path)
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    event = tmp_path / "event.json"
    base_sha = subprocess.run(["git", "rev-parse", "main"], cwd=t["repo"], capture_output=True, text=True).stdout.strip()
    head_sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=t["repo"], capture_output=True, text=True).stdout.strip()
    event.write_text(json.dumps({"pull_request": {"number": 864, "base": {"sha": base_sha}, "head": {"sha": head_sha}}}))
    env = {
        "GITHUB_WORKSPACE": str(t["repo"]), "GITHUB_STEP_SUMMARY": str(tmp_path / "step_summary.md"),
        "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "openai/parameter-golf", "GITHUB_RUN_ID": "4242",
        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_ACTION_PATH": str(REPO), "RUNNER_TEMP": str(runner_temp),
        # The package under test is this checkout (installed editable); make sure the action uses it.
        "PYTHONPATH": str(REPO), "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }
    (tmp_path / "step_summary.md").write_text("")
    contexts = {"github": {"event": json.loads(event.read_text()), "token": "t"}, "runner": {"temp": str(runner_temp)}}
    return t, env, contexts


def _run_action(env, contexts, **inputs) -> Runner:
    r = Runner(_load(ACTION), inputs, contexts, env, skip={"Install pgolf"})  # pgolf is installed (editable) already
    r.run()
    return r


def test_action_end_to_end(gh_env, tmp_path):
    t, env, contexts = gh_env
    r = _run_action(env, contexts)  # all defaults: base = the PR's base sha
    out = r.outputs["audit"]
    assert out["verdict"] == "fail" and out["exit-code"] == "1" and out["folders"] == "2", r.stderr
    assert r.failed and "findings at or above fail-on" in r.last_error  # the last step fails the job
    report_dir = Path(out["report-dir"])
    assert report_dir == tmp_path / "runner" / "pgolf-report"

    # Annotations: GitHub's workflow-command syntax, repo-relative paths that exist.
    notes = [ANNOTATION.match(line) for line in r.stdout.splitlines() if line.startswith("::")]
    assert notes and all(notes), r.stdout
    by_title = {m.group(3): m for m in notes}
    waiver = by_title["pgolf WAIVER-REASON (PG901)"]
    assert waiver.group(1) == "error"
    assert waiver.group(2) == "file=records/track_non_record_16mb/2026-02-02_E/train_gpt.py,line=2"
    for m in notes:
        rel = m.group(2).split(",")[0][len("file="):]
        assert (t["repo"] / rel).exists(), rel
    # info findings stay out of the annotations (only waived ones are notices); the summary keeps them
    assert all("[waived]" in m.group(3) for m in notes if m.group(1) == "notice"), r.stdout

    # The step summary carries the verdict and every finding.
    summary = Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert "fail" in summary.split("\n", 1)[0]
    assert "records/track_non_record_16mb/2026-02-02_E" in summary and "2026-02-01_D record" in summary
    assert "WAIVER-REASON" in summary and "SUBMISSION-FILES" in summary
    assert "2026-01-01_A" not in summary and "2026-02-03_F" not in summary

    # SARIF: valid 2.1.0 (sarif-pydantic), relative URIs that resolve inside the checkout.
    from sarif_pydantic import Sarif

    sarif_path = Path(out["sarif-file"])
    doc = json.loads(sarif_path.read_text(encoding="utf-8"))
    Sarif.model_validate(doc)
    uris = [loc["physicalLocation"]["artifactLocation"]["uri"] for res in doc["runs"][0]["results"] for loc in res["locations"]]
    assert uris
    for u in uris:
        assert not u.startswith(("/", "file:")) and ".." not in u, u
        assert (t["repo"] / unquote(u)).exists(), u
    results = {res["ruleId"]: res for res in doc["runs"][0]["results"]}
    assert results["WAIVER-REASON"]["locations"][0]["physicalLocation"]["region"]["startLine"] == 2

    # The artifact: JSON report of exactly the PR's folders, the comment body, the PR number.
    report = json.loads(Path(out["json-file"]).read_text(encoding="utf-8"))
    assert sorted(rec["path"] for rec in report["records"]) == [
        "records/track_10min_16mb/2026-02-01_D record", "records/track_non_record_16mb/2026-02-02_E"]
    body = Path(out["markdown-file"]).read_text(encoding="utf-8")
    assert body.startswith("<!-- pgolf-report -->\n") and "actions/runs/4242" in body and len(body) < 65_536
    assert (report_dir / "pr-number").read_text().strip() == "864"

    # The uses: steps got the files the audit step wrote.
    uses = dict(r.uses)
    assert uses["actions/upload-artifact@v4"]["path"] == str(report_dir)
    assert uses["actions/upload-artifact@v4"]["name"] == "pgolf-report"
    assert "github/codeql-action/upload-sarif@v3" not in uses  # upload-sarif defaults to false
    assert uses["actions/setup-python@v5"]["python-version"] == "3.11"


def test_action_clean_pr_passes_and_uploads_sarif(gh_env):
    t, env, contexts = gh_env
    shutil.rmtree(t["E"])  # the PR now adds only the clean folder D (E is deleted, uncommitted)
    r = _run_action(env, contexts, **{"upload-sarif": "true", "fail-on": "warning"})
    out = r.outputs["audit"]
    assert (out["verdict"], out["exit-code"], out["folders"]) == ("pass", "0", "1"), r.stdout + r.stderr
    assert not r.failed
    assert dict(r.uses)["github/codeql-action/upload-sarif@v3"]["sarif_file"] == out["sarif-file"]


def test_action_pr_without_record_folders_is_not_a_failure(gh_env):
    t, env, contexts = gh_env
    r = _run_action(env, contexts, base="HEAD", paths="records/track_10min_16mb")
    out = r.outputs["audit"]
    assert (out["verdict"], out["exit-code"], out["folders"]) == ("none", "0", "0")
    assert not r.failed
    assert "no record folder changed" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()


def test_action_rejects_bad_inputs_without_running_them(gh_env, tmp_path):
    t, env, contexts = gh_env
    canary = tmp_path / "pwned"
    r = _run_action(env, contexts, base=f"--output={canary}")
    assert r.failed and "must be a git ref" in r.stdout and not canary.exists()
    r = _run_action(env, contexts, **{"fail-on": "$(touch " + str(canary) + ")"})
    assert r.failed and "fail-on must be one of" in r.stdout and not canary.exists()


# ---- static checks of the YAML ---------------------------------------------------------------------

def test_action_yml_uses_inputs_only_through_env():
    action = _load(ACTION)
    declared = set(action["inputs"])
    assert action["runs"]["using"] == "composite"
    text = ACTION.read_text(encoding="utf-8")
    used = set(re.findall(r"inputs\.([\w-]+)", text))
    assert used <= declared, used - declared
    assert declared <= used, f"inputs never used: {declared - used}"
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert step.get("shell") == "bash"
            assert "${{" not in step["run"], f"expression interpolated into shell in {step.get('name')!r}"
            subprocess.run(["bash", "-n", "-c", step["run"]], check=True)
    for name, out in action["outputs"].items():
        m = EXPR.fullmatch(out["value"])
        step_id = m.group(1).split(".")[1]
        assert any(s.get("id") == step_id for s in action["runs"]["steps"])


def test_example_audit_workflow():
    doc = _load(EXAMPLES / "pgolf-audit.yml")
    assert "pull_request" in _on(doc) and "pull_request_target" not in _on(doc)
    assert all(v in ("read", "none") for v in doc["permissions"].values())
    text = (EXAMPLES / "pgolf-audit.yml").read_text()
    assert "secrets." not in text
    steps = doc["jobs"]["audit"]["steps"]
    pg = next(s for s in steps if s.get("id") == "pgolf")
    assert set(pg["with"]) <= set(_load(ACTION)["inputs"])
    checkout = next(s for s in steps if s["uses"].startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0  # --changed needs the merge base


def test_example_comment_workflow_is_fork_safe():
    audit = _load(EXAMPLES / "pgolf-audit.yml")
    doc = _load(EXAMPLES / "pgolf-comment.yml")
    assert _on(doc)["workflow_run"]["workflows"] == [audit["name"]]
    steps = doc["jobs"]["comment"]["steps"]
    assert not any(str(s.get("uses", "")).startswith("actions/checkout") for s in steps), "never check out the PR"
    dl = next(s for s in steps if str(s.get("uses", "")).startswith("actions/download-artifact"))
    pg = next(s for s in audit["jobs"]["audit"]["steps"] if s.get("id") == "pgolf")
    assert dl["with"]["name"] == pg["with"]["artifact-name"]
    for s in steps:
        if "run" in s:
            assert "${{" not in s["run"], "artifact and event data reach the script only through env"
            subprocess.run(["bash", "-n", "-c", s["run"]], check=True)


FAKE_GH = r'''#!/usr/bin/env python3
"""A stand-in for `gh api` that keeps PR comments in a JSON file."""
import json, os, sys
state_file = os.environ["FAKE_GH_STATE"]
state = json.load(open(state_file))
args = sys.argv[1:]
assert args[0] == "api", args
method = args[args.index("--method") + 1] if "--method" in args else "GET"
path = [a for a in args[1:] if a.startswith("repos/")][0]
body = None
if "-F" in args:
    field = args[args.index("-F") + 1]
    assert field.startswith("body=@")
    body = open(field[len("body=@"):], encoding="utf-8").read()
state["calls"].append([method, path])
if path.endswith("/pulls/" + str(state["pr"])):
    print(state["head"])
elif method == "GET" and path.endswith("/comments"):
    for c in state["comments"]:
        if c["user"] == "github-actions[bot]" and c["body"].startswith("<!-- pgolf-report -->"):
            print(c["id"])
elif method == "POST":
    state["comments"].append({"id": 100 + len(state["comments"]), "user": "github-actions[bot]", "body": body})
elif method == "PATCH":
    cid = int(path.rsplit("/", 1)[1])
    next(c for c in state["comments"] if c["id"] == cid)["body"] = body
json.dump(state, open(state_file, "w"))
'''


def test_comment_script_posts_then_updates_one_sticky_comment(tmp_path):
    doc = _load(EXAMPLES / "pgolf-comment.yml")
    step = next(s for s in doc["jobs"]["comment"]["steps"] if "run" in s)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gh").write_text(FAKE_GH)
    (bindir / "gh").chmod(0o755)
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"pr": 864, "head": "abc123", "calls": [], "comments": [
        {"id": 1, "user": "someone", "body": "<!-- pgolf-report --> spoofed by a person"}]}))
    art = tmp_path / "pgolf-report"
    art.mkdir()
    (art / "pr-number").write_text("864\n")
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}", "FAKE_GH_STATE": str(state),
           "GH_TOKEN": "x", "REPO": "openai/parameter-golf", "HEAD_SHA": "abc123", "REPORT_DIR": "pgolf-report"}

    def post(report: str) -> dict:
        (art / "pgolf-report.md").write_text(report, encoding="utf-8")
        proc = subprocess.run(["bash", "-c", step["run"]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(state.read_text())

    s = post("<!-- pgolf-report -->\n## pgolf: fail\nping @maintainer\n")
    mine = [c for c in s["comments"] if c["user"] == "github-actions[bot]"]
    assert len(mine) == 1 and mine[0]["body"].startswith("<!-- pgolf-report -->\n## pgolf: fail")
    assert "@maintainer" not in mine[0]["body"] and "@\u2060maintainer" in mine[0]["body"]
    s = post("## pgolf: pass\n" + "x" * 70_000)
    mine = [c for c in s["comments"] if c["user"] == "github-actions[bot]"]
    assert len(mine) == 1 and "pgolf: pass" in mine[0]["body"] and len(mine[0]["body"]) < 65_536
    assert ["PATCH", "repos/openai/parameter-golf/issues/comments/101"] in s["calls"]
    # An artifact naming a PR whose head is not the audited commit gets no comment.
    env["HEAD_SHA"] = "not-the-head"
    before = len(s["calls"])
    s = post("## pgolf: pass\n")
    assert [c[0] for c in s["calls"][before:]] == ["GET"]
