"""Shared static analysis of a record's code, built once per folder and reused by every rule.

Public API (stable; other rules may import it)::

    from rules.analysis import analyse
    facts = analyse(ctx)                      # CodeFacts, cached as ctx.fact("code", ...)
    for ff in facts.files:                    # FileFacts per analysable file (wrappers decoded)
        ff.path, ff.tree, ff.lines            # stdlib ast tree, source lines
        ff.functions["Class.method"]          # FuncInfo: qualname, short, cls, line, params, calls
        ff.classes, ff.assignments            # module index with line numbers
        ff.env["NGRAM_EVAL"]                  # EnvDefault(var, default, line, attr, expr)
        ff.fields["ngram_eval"]               # the same, keyed by Hyperparameters field / module name
        ff.parent(node), ff.line_text(line)
    facts.notes.get(ff.path)                  # "in the code decoded from ..." for wrapped code
    facts.functions / facts.by_short          # every function of the program (all files)
    facts.callees(fn), facts.call_graph()     # name-based call graph (generous: method names match)
    facts.reachable_from(fn)                  # transitive callees of a function (FuncInfo or qualname)
    facts.reachability(node, ff)              # None | "unreachable" | "non-default" (auditor.policy)
    facts.reach(node, ff).why                 # the evidence behind it, for Finding.reachability
    facts.config                              # RunConfig: code defaults + README env + logged dump
    facts.config.field_value("ngram_eval")    # (value, {"default"|"readme"|"log"})
    facts.logs                                # LogFacts: lines, finals, markers, key/values
    taint(facts)                              # rules.analysis.dataflow.TaintFacts (built on demand)
    patterns.summaries(facts).does(fn, kind)  # kind: "train" | "score" | "ngscore" | "cache" | "backward" | "step"

Design (why stdlib ``ast`` and not libcst metadata): on PR #864's 2,227-line file ``ast.parse``
takes 0.05 s, ``libcst.parse_module`` 0.35 s and libcst's Scope/QualifiedName providers 3.6 s,
while the whole audit must stay under 1 s. Everything these rules need (line numbers, parents,
def-use by name, calls) is in the ``ast`` tree, so the analysis uses one ``ast`` parse per distinct
file text, cached process-wide by sha256 (``index.file_facts``), a parent map built in the same
pass, and our own name-based call graph and taint propagation instead of the providers. Positions
are ``ast`` line numbers, identical to libcst's ``PositionProvider`` lines for the nodes we report.

Reachability: a node is "unreachable" when an ``if`` guard above it (or above every call site of
its function) evaluates false under the run's configuration and no log line shows text only that
branch prints; "non-default" when the same holds but the folder has no logs and no README run
command to confirm the configuration. Anything the evaluator cannot decide counts as reachable.
"""
from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from rules.analysis.config import RunConfig, script_env
from rules.analysis.facts import CodeFacts, Reach, build_code_facts
from rules.analysis.index import EnvDefault, FileFacts, FuncInfo, call_name, file_facts
from rules.analysis.logs import LogFacts, read_log_facts, readme_env
from rules.analysis.index import walk as ast_walk  # ast.walk, faster (same nodes, same order)

if TYPE_CHECKING:  # pragma: no cover
    from auditor.context import AuditContext


def _build(ctx: "AuditContext") -> CodeFacts:
    ev = ctx.evidence
    files: list[FileFacts] = []
    notes: dict[str, str] = {}
    for cf in ev.code.python_sources():
        # compat_text: the code reader rewrote 3.12 f-string quotes (same line numbers) so this Python parses it
        # the reader's parse of that same text: one parse and one walk per file
        tree = cf.tree() if hasattr(cf, "tree") else None
        ff = file_facts(cf.path, getattr(cf, "compat_text", None) or cf.text, tree, cf.nodes() if tree is not None else None)
        files.append(ff)
        if cf.decoded_from:
            chain = " → ".join(cf.wrapper_chain) if cf.wrapper_chain else "a wrapper"
            notes[cf.path] = f"in the code decoded from the self-extracting wrapper in {cf.decoded_from} ({chain}); line numbers refer to the decoded source"
    logs = read_log_facts(ev)
    renv = readme_env(ev.readme)
    senv: dict[str, str] = {}
    for _path, text in getattr(ev.code, "scripts", ()):
        for k, v in script_env(text).items():
            senv.setdefault(k, v)
    logged = dict(logs.kv)
    config = RunConfig(readme_env=renv, logged=logged, markers=logs.markers, script_env=senv,
                       world_size=_world_size(ev, renv, senv, logged),
                       has_run_evidence=bool(ev.logs) or bool(renv) or bool(senv))
    return build_code_facts(files, notes, config, logs)


def _world_size(ev, renv, senv, logged) -> int | None:
    """Processes the run used: the logs' ``world_size``, else the launch command's ``--nproc_per_node``."""
    sizes = {run.world_size for lf in ev.logs for run in (getattr(lf, "runs", None) or []) if getattr(run, "world_size", None)}
    for k in ("world_size", "WORLD_SIZE"):
        v = logged.get(k)
        if v and str(v).isdigit():
            sizes.add(int(v))
    if len(sizes) == 1:
        return sizes.pop()
    if sizes:
        return None  # runs disagree: leave it open
    for k in ("NPROC_PER_NODE", "NPROC", "NGPUS", "NUM_GPUS"):
        for env in (renv, senv, script_env(ev.readme or "")):
            if str(env.get(k, "")).isdigit():
                return int(env[k])
    return None


def analyse(ctx: "AuditContext") -> CodeFacts:
    """The code facts of the folder in ``ctx`` (built once per folder)."""
    return ctx.fact("code", _build)


def native(ctx: "AuditContext"):
    """C/C++/CUDA sources the record builds (shipped files and ``load_inline`` strings), read with
    tree-sitter; parameters that Python feeds target-labelled arrays are the predicted tokens."""
    return ctx.fact("native", _build_native)


def _build_native(ctx):
    from rules.analysis.dataflow import TARGET_NAME, NOT_TARGET
    from rules.analysis.native_code import NativeFacts, analyse_native

    code = ctx.evidence.code
    sources = [(cf.path, cf.text, 1) for cf in code.files if cf.role == "native" and cf.text]
    for where, line, src in getattr(code, "inline_native", ()):
        host = next((cf.text for cf in code.files if cf.path == where and cf.text), "")
        pos = host.find(src[:200]) if src.strip() else -1
        sources.append((where, src, host.count("\n", 0, pos) + 1 if pos >= 0 else line))
    if not sources:
        return NativeFacts(unreadable=list(getattr(code, "opaque_native", ())))
    first = analyse_native(sources, {})
    facts = analyse(ctx)
    tf = taint(facts)
    targets: dict[str, set[int]] = {}
    for fn in facts.functions.values():
        env = tf.env.get(fn.qualname, {})
        for short, call in fn.calls:
            if short not in first.functions:
                continue
            for i, a in enumerate(call.args):
                for n in ast_walk(a):
                    if isinstance(n, ast.Name) and (any(l[0] == "T" for l in env.get(n.id, ())) or (
                            TARGET_NAME.match(n.id) and not NOT_TARGET.search(n.id))):
                        targets.setdefault(short, set()).add(i)
                        break
    out = analyse_native(sources, targets) if targets else first
    out.unreadable.extend(getattr(code, "opaque_native", ()))
    return out


def taint(facts: CodeFacts):
    """Interprocedural target taint of the program (built once per CodeFacts)."""
    from rules.analysis.dataflow import build_taint

    return facts.cached("taint", lambda: build_taint(facts))


__all__ = ["analyse", "taint", "native", "CodeFacts", "FileFacts", "FuncInfo", "EnvDefault", "RunConfig", "LogFacts", "Reach",
           "call_name", "file_facts"]
