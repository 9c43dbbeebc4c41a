"""NET-NO-DOWNLOAD (rules.md §1.2)."""
from __future__ import annotations

from auditor.model import Severity
from auditor.policy import UNREACHABLE
from rules.base import Invalid, Rule, Valid, register
from rules.data_access import data_facts
from rules.data_no_train_at_eval import _CLEAN, _TRAIN

_HUB = _TRAIN.format(after="    return eval_val(model, val_tokens)\n").replace(
    "def eval_val(model, tokens):\n", "def eval_val(model, tokens):\n    from huggingface_hub import hf_hub_download\n"
    "    hf_hub_download('someone/prior', 'table.npz')\n")
_DYNAMIC = _CLEAN + "\nname = 'req' + 'uests'\nmod = __import__(name)\n"


@register
class NetNoDownload(Rule):
    """No network access or downloads during evaluation: urllib, requests, http.client, socket,
    huggingface_hub, torch.hub, ``from_pretrained``/``load_dataset``, or a subprocess running
    curl/wget/pip. Downloads in data-prep scripts that the entry point does not run are setup, not
    evaluation. Dynamic imports and ``exec`` of computed strings cannot be resolved statically; they
    are warnings that say so.

    Ruling: README FAQ ("No external downloads, training dataset access, or network calls are allowed
    during evaluation").
    """

    id = "NET-NO-DOWNLOAD"
    code = "PG203"
    title = "network access in the code the record runs"
    family = "net"
    ruling = "https://github.com/openai/parameter-golf/blob/main/README.md#faq"
    fix = "Ship everything the run needs inside the artifact; move downloads to a data-prep script run before training."
    default_severity = Severity.ERROR

    VALID = [Valid(_CLEAN), Valid({"train_gpt.py": _CLEAN, "cached_challenge_fineweb.py": "from huggingface_hub import hf_hub_download\n"},
                                  note="a download helper the entry point does not run")]
    INVALID = [Invalid(_HUB, note="hub download in the eval function"),
               Invalid(_DYNAMIC, expect=Severity.WARNING, note="dynamic import the static pass cannot resolve")]

    def check(self, ctx):
        df = data_facts(ctx)
        for a in df.accesses:
            if a.kind not in ("net-import", "net-call", "shell-net") or a.reach == UNREACHABLE:
                continue
            if a.kind == "net-import":
                # an import alone moves no bytes; it matters when nothing else explains it
                sev, why = Severity.WARNING, f"{a.detail} in code the entry point runs; no call was resolved, check how it is used"
            elif a.after_training:
                sev, why = Severity.ERROR, f"{a.detail} on a path that runs after training (evaluation)"
            elif not df.loop:
                # no training loop located: the phase cannot be told, so this needs review rather than failing
                sev, why = Severity.WARNING, (f"{a.detail} in code the entry point runs; the training loop could not be "
                                              "located, so whether this runs during evaluation could not be checked")
            else:
                sev, why = Severity.WARNING, f"{a.detail} during the training phase; the artifact must not depend on downloaded data"
            if a.reach:
                sev = Severity.WARNING
            yield self.finding(a.file, a.line, why + (f" (in {a.func})" if a.func else ""), evidence=[a.text], severity=sev,
                               note=df.notes.get(a.file), reachability=a.reach_why or None)
        for d in ctx.evidence.code.dynamic:
            yield self.finding(d.file, d.line, f"dynamic {d.what}: {d.why}; whether it reaches the network cannot be checked statically",
                               evidence=[d.text], severity=Severity.WARNING,
                               fix="Import modules and exec files by literal name so the audit can follow them.")
