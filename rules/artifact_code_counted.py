"""ARTIFACT-CODE-COUNTED (rules.md §1.3): every code file the record runs counts toward the cap."""
from __future__ import annotations

import lzma

from auditor.model import Severity
from rules.artifact_measure import CAP, artifact_facts, fmt
from rules.base import Invalid, Rule, Valid, register
from rules.time_logs import three_seeds

_HELPER = "def tilt(x):\n    return x\n" + "".join(f"T{i} = {i}\n" for i in range(3000))
_BOMB_NOTE = "a wrapper whose payload decompresses to more than 64 MB is reported, not expanded"


def _bomb_wrapper() -> str:
    import base64

    blob = base64.b85encode(lzma.compress(b"#" * (65 * 1024 * 1024), preset=1)).decode()
    return f'import lzma, base64\nexec(lzma.decompress(base64.b85decode("{blob}")))\n'


@register
class ArtifactCodeCounted(Rule):
    """All code needed to train and evaluate counts toward the 16,000,000 bytes ("All counted code
    should live in the train_gpt.py script").

    The auditor follows the entry point through self-extracting wrappers (decoded with a 64 MB cap,
    never executed), stubs that exec a sidecar, helper modules it imports from the folder and C/C++/
    CUDA sources it builds at run time, and compares those shipped bytes with the code bytes the log
    counts. A sidecar or stub left out is an error when the corrected total is over the cap. Helper
    modules left out (#1514) and code counted as lzma(minified) while shipped raw (#1530) are
    contested: a warning when the corrected total is over the cap, otherwise reported. Wrappers the
    decoder cannot open are warnings (the code bytes are then a lower bound).

    Ruling: README FAQ; #1412 (an exec'd ``train_gpt_decode.py`` counts in full); #1514 submission.json
    (helpers excluded, contested); #1530 (compressed counting).
    """

    id = "ARTIFACT-CODE-COUNTED"
    code = "PG302"
    title = "code the record runs is left out of the byte count"
    family = "artifact"
    ruling = "https://github.com/openai/parameter-golf/pull/1412"
    fix = "Count every file the entry point runs (sidecars, helper modules, native sources), as shipped, in the code bytes."
    default_severity = Severity.ERROR

    VALID = [
        Valid({"train_gpt.py": "print(1)\n", **three_seeds(code=9)}),
        Valid({"train_gpt.py": "import helper\n", "helper.py": "X = 1\n", **three_seeds(code=15)}, note="small helper: reported"),
    ]
    INVALID = [
        Invalid({"train_gpt.py": "from ngram_tilt import tilt\nprint(tilt(1))\n", "ngram_tilt.py": _HELPER,
                 **three_seeds(code=38, model=15_990_000)}, expect=Severity.WARNING, note="helper outside the count (#1514 shape)"),
        Invalid({"train_gpt.py": 'exec(open("train_gpt_decode.py").read())\n', "train_gpt_decode.py": _HELPER,
                 **three_seeds(code=41, model=15_990_000)}, note="exec'd sidecar outside the count"),
    ]

    def check(self, ctx):
        ev = ctx.evidence
        if not ev.code.entry:
            return
        facts = artifact_facts(ctx)
        code = facts.code
        for where, line, why in ev.code.undecodable:
            yield self.finding(where, line, f"could not open what this wrapper runs ({why}); the code bytes are a lower bound",
                               severity=Severity.WARNING, evidence=[why])
        extra = [(p, r, b) for p, r, b in code.files if r != "entry"]
        files_txt = [f"{p}: {fmt(b)} bytes ({r})" for p, r, b in code.files]
        for s in facts.seeds:
            logged = s.logged_code_compressed if s.logged_code_compressed is not None else s.logged_code
            if logged is None:
                continue
            missing = code.shipped - logged
            if missing <= 0:
                continue
            model = s.model or 0
            corrected = model + code.shipped
            who = f"seed {s.seed}" if s.seed is not None else s.log
            helpers = sum(b for _p, r, b in extra if r in ("import", "native"))
            sidecars = sum(b for _p, r, b in extra if r in ("exec", "payload"))
            compressed = s.logged_code_compressed is not None
            base = (f"{who}: the log counts {fmt(logged)} bytes of code{' (compressed)' if compressed else ''}; the files the entry point "
                    f"runs are {fmt(code.shipped)} bytes as shipped; corrected total {fmt(corrected)} ({'over' if corrected > CAP else 'under'} "
                    f"16,000,000; model {fmt(s.model)} {s.model_source})")
            if corrected <= CAP:
                yield self.finding(s.log, s.total_line, base, severity=Severity.INFO, evidence=s.evidence + files_txt)
                continue
            if sidecars and logged < code.entry + sidecars and not compressed:
                yield self.finding(s.log, s.total_line, base + ": an exec'd sidecar/payload is left out", evidence=s.evidence + files_txt)
            elif compressed and logged < code.entry + sidecars:
                yield self.finding(s.log, s.total_line, base + ": fits only under compressed counting of code that ships uncompressed "
                                   "(contested, #1530)", severity=Severity.WARNING, evidence=s.evidence + files_txt)
            elif helpers:
                yield self.finding(s.log, s.total_line, base + f": {fmt(helpers)} bytes of helper modules/native sources run at "
                                   "evaluation are left out (contested, #1514)", severity=Severity.WARNING, evidence=s.evidence + files_txt)
            else:
                yield self.finding(s.log, s.total_line, base, evidence=s.evidence + files_txt)
            break  # one finding for the worst-placed seed is enough; ARTIFACT-16MB lists every seed
        for path, size in facts.tokenizer_files:
            top = facts.max_measured
            over = top is not None and top.measured_total is not None and top.measured_total + size > CAP
            yield self.finding(path, None, f"tokenizer file shipped in the folder ({fmt(size)} bytes), not counted by any merged record; "
                               "whether it counts is an open question" + (" and counting it would put the total over 16,000,000" if over else ""),
                               severity=Severity.WARNING if over else Severity.INFO,
                               fix="Say in the README how the tokenizer is obtained, or count it.")
