"""Renderers: one Report model, one module per format. Exit codes come from the Report."""
from __future__ import annotations

from importlib import import_module

from auditor.model import Report

FORMATS = {
    "text": "auditor.report.text",
    "json": "auditor.report.json_report",
    "markdown": "auditor.report.markdown",
    "sarif": "auditor.report.sarif",
    "github": "auditor.report.github",
}


def render(report: Report, fmt: str, **kw) -> str:
    mod = import_module(FORMATS[fmt])
    return mod.render(report, **kw)
