"""SARIF 2.1.0 for GitHub code scanning (tooling.md §3.1).

One run, one reportingDescriptor per rule id (the catalog id, stable across runs), results with
repo-relative URIs under ``%SRCROOT%`` (GitHub ignores ``originalUriBaseIds`` and resolves
relative paths against the checkout), and a partial fingerprint that survives line shifts.
Waived findings stay in the log as suppressed results; unreadable files become tool notifications.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from auditor.model import Finding, RecordResult, Report, Severity
from auditor.report import common as C

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
LEVEL_BY_NAME = {s.value: level for s, level in LEVEL.items()}
MAX_RESULTS = 25_000  # GitHub's per-run limit
MAX_MESSAGE_EVIDENCE = 5


def uri(path: str) -> str:
    """A relative URI reference: spaces, '#', '%' and non-ASCII percent-encoded, '/' kept. A name
    that was not valid UTF-8 on disk (carried as surrogates) is encoded as its original bytes; any
    other lone surrogate becomes '?'."""
    try:
        return quote(path, safe="/", errors="surrogateescape")
    except UnicodeEncodeError:
        return quote(path, safe="/", errors="replace")


def _camel(rule_id: str) -> str:
    return "".join(part.capitalize() for part in rule_id.replace("_", "-").split("-") if part)


def _descriptor(info: C.RuleInfo) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": info.id,
        "name": _camel(info.id),
        "shortDescription": {"text": info.title or info.id},
        "defaultConfiguration": {"level": LEVEL_BY_NAME.get(info.severity, "warning")},
        "properties": {"tags": ["parameter-golf", info.family], "precision": "high"},
    }
    if info.code:
        d["properties"]["code"] = info.code
    name = f"{info.id} ({info.code})" if info.code else info.id
    text = [f"{name}: {info.title}." if info.title else name]
    md = [f"**{name}**: {info.title}." if info.title else f"**{name}**"]
    if info.fix:
        text.append(f"How to fix: {info.fix}")
        md.append(f"How to fix: {info.fix}")
    if info.ruling:
        d["helpUri"] = info.ruling
        d["fullDescription"] = {"text": f"{info.title or info.id}. Ruling: {info.ruling}"}
        text.append(f"Ruling: {info.ruling}")
        md.append(f"Ruling: <{info.ruling}>")
    d["help"] = {"text": "\n\n".join(text), "markdown": "\n\n".join(md)}
    return d


def _fingerprint(rule: str, path: str, f: Finding) -> str:
    # Rule + file + message + first evidence line, whitespace normalised, no line number: stable
    # when lines move, distinct for two findings of one rule on one file.
    norm = [" ".join(x.split()) for x in (f.message, f.evidence[0] if f.evidence else "")]
    return hashlib.sha256("\0".join([rule, path, *norm]).encode("utf-8", "replace")).hexdigest()[:32]


def _message(f: Finding, info: C.RuleInfo) -> str:
    parts = [f.message.strip() or info.title or f.rule]
    if f.file and not C.inside_folder(f.file):
        parts[0] = f"{C.location(f)}: {parts[0]}"  # outside the folder: the location cannot say it
    if f.evidence:
        shown = f.evidence[:MAX_MESSAGE_EVIDENCE]
        parts.append("Evidence:\n" + "\n".join(f"  {line.rstrip()}" for line in shown)
                     + (f"\n  … {len(f.evidence) - len(shown)} more lines" if len(f.evidence) > len(shown) else ""))
    if f.path:
        parts.append("Path: " + " → ".join(f.path))
    if f.reachability:
        parts.append(f"Reachability: {f.reachability}")
    if f.note:
        parts.append(f"Note: {f.note}")
    fix = f.fix or info.fix
    if fix:
        parts.append(f"Fix: {fix}")
    ruling = f.ruling or info.ruling
    if ruling:
        parts.append(f"Ruling: {ruling}")
    return "\n".join(parts)


def _result(report: Report, rec: RecordResult, f: Finding, index: dict[str, int]) -> dict[str, Any]:
    info = C.rule_info(f, report)
    file, line = C.anchor_file(rec, f)
    path = C.repo_path(report, rec, file)
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri(path) or ".", "uriBaseId": "%SRCROOT%"}}
    if line is not None:
        physical["region"] = {"startLine": line}
    res: dict[str, Any] = {
        "ruleId": f.rule,
        "ruleIndex": index[f.rule],
        "level": LEVEL[f.severity],
        "message": {"text": _message(f, info)},
        "locations": [{"physicalLocation": physical}],
        "partialFingerprints": {"pgolfFindingHash/v1": _fingerprint(f.rule, path, f)},
        "properties": {"record": rec.path, "verdict": rec.verdict, "severity": f.severity.value},
    }
    if f.code:
        res["properties"]["code"] = f.code
    if not f.file:
        res["properties"]["scope"] = "folder"
    if f.waived is not None:
        res["suppressions"] = [{"kind": "external", "status": "accepted", "justification": f.waived}]
    return res


def sarif_log(report: Report) -> dict[str, Any]:
    catalog = C.rule_catalog(report)
    infos: dict[str, C.RuleInfo] = dict(catalog)
    for rec in report.records:
        for f in rec.findings:
            if f.rule not in infos:
                infos[f.rule] = C.rule_info(f, report)
    ids = sorted(infos)
    index = {rid: i for i, rid in enumerate(ids)}
    results = []
    notifications = []
    seen: dict[str, int] = {}
    for rec in C.records_by_verdict(report):
        for f in C.ordered_findings(rec):
            res = _result(report, rec, f, index)
            # Exact duplicates (same rule, file, message, evidence) still need distinct fingerprints.
            fp = res["partialFingerprints"]["pgolfFindingHash/v1"]
            seen[fp] = seen.get(fp, 0) + 1
            if seen[fp] > 1:
                res["partialFingerprints"]["pgolfFindingHash/v1"] = f"{fp}:{seen[fp]}"
            results.append(res)
        for p in rec.errors:
            notifications.append({"level": "warning", "message": {"text": f"{rec.path}: {C.one_line(p.line(), 1000)}"}})
    for p in report.errors:
        notifications.append({"level": "warning", "message": {"text": C.one_line(p.line(), 1000)}})
    if len(results) > MAX_RESULTS:
        notifications.append({"level": "warning", "message": {"text": f"{len(results) - MAX_RESULTS} results left out (GitHub keeps {MAX_RESULTS} per run); see the JSON report"}})
        results = results[:MAX_RESULTS]
    tool = report.tool or {}
    driver: dict[str, Any] = {
        "name": tool.get("name", "pgolf"),
        "informationUri": tool.get("information_uri", "https://github.com/openai/parameter-golf"),
        "rules": [_descriptor(infos[rid]) for rid in ids],
    }
    if tool.get("version"):
        driver["version"] = str(tool["version"])
        driver["semanticVersion"] = str(tool["version"])
    invocation: dict[str, Any] = {"executionSuccessful": bool(report.records)}
    if notifications:
        invocation["toolExecutionNotifications"] = notifications
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver},
            "automationDetails": {"id": "pgolf/static/"},
            "invocations": [invocation],
            "results": results,
        }],
    }


def render(report: Report, **_: Any) -> str:
    return C.printable(json.dumps(sarif_log(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
