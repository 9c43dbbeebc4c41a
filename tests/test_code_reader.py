"""The code reader follows what the entry point runs without executing it (auditor/evidence/code.py)."""
from __future__ import annotations

import base64
import lzma
import time
import zlib

from auditor.discover import discover
from auditor.evidence import read_evidence
from tests.helpers import write_folder

BODY = "import os\n\ndef main():\n    print(os.getcwd())\n\nmain()\n"


def _bundle(tmp_path, files):
    folder = write_folder(tmp_path, files)
    return read_evidence(discover([folder]).folders[0]).code


def _roles(code):
    return {(f.path, f.role) for f in code.files}


def test_lzma_base85_wrapper_is_decoded_and_shipped_bytes_counted(tmp_path):
    blob = base64.b85encode(lzma.compress(BODY.encode())).decode()
    stub = f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{blob}")))\n'
    code = _bundle(tmp_path, {"train_gpt.py": stub})
    dec = [f for f in code.files if f.role == "decoded"]
    assert dec and dec[0].text == BODY and dec[0].wrapper_chain == ["base64.b85decode", "lzma.decompress"]
    assert code.counted_bytes() == len(stub.encode()) == code.code_bytes().shipped
    assert [f.role for f in code.python_sources()] == ["decoded"]


def test_stub_that_execs_a_sidecar_via_file_replace(tmp_path):
    stub = 'exec(open(__file__.replace("train_gpt.py","train_gpt_decode.py")).read())\n'
    code = _bundle(tmp_path, {"train_gpt.py": stub, "train_gpt_decode.py": BODY})
    assert ("train_gpt_decode.py", "exec") in _roles(code)
    cb = code.code_bytes()
    assert cb.shipped == len(stub) + len(BODY) and cb.helpers == len(BODY)


def test_compile_of_variables_and_os_path_join(tmp_path):
    stub = ("import os, zlib, base64\n_d = os.path.dirname(os.path.abspath(__file__))\n"
            f"S = zlib.decompress(base64.b64decode({base64.b64encode(zlib.compress(BODY.encode())).decode()!r}))\n"
            "exec(compile(S, 'x.py', 'exec'))\n"
            "exec(open(os.path.join(_d, 'runner.py')).read())\n")
    code = _bundle(tmp_path, {"train_gpt.py": stub, "runner.py": "import helper\n", "helper.py": "X = 1\n"})
    roles = _roles(code)
    assert ("train_gpt.py", "decoded") in roles and ("runner.py", "exec") in roles and ("helper.py", "import") in roles


def test_payload_file_read_by_path_methods_counts(tmp_path):
    payload = lzma.compress(BODY.encode())
    stub = "import lzma, pathlib\n_src = lzma.decompress(pathlib.Path(__file__).with_suffix('.py.lzma').read_bytes())\nexec(compile(_src, __file__, 'exec'))\n"
    code = _bundle(tmp_path, {"train_gpt.py": stub, "train_gpt.py.lzma": payload})
    assert ("train_gpt.py.lzma", "payload") in _roles(code)
    assert code.code_bytes().shipped == len(stub) + len(payload)


def test_native_sources_built_at_run_time_are_code(tmp_path):
    helper = ('import subprocess, ctypes\nfrom pathlib import Path\n_SRC = Path(__file__).parent / "kern" / "fused.cpp"\n'
              'subprocess.run(["g++", "-O3", "-shared", str(_SRC), "-o", "k.so"])\n')
    code = _bundle(tmp_path, {"train_gpt.py": "def ev():\n    from tilt import x\n", "tilt.py": helper,
                              "kern/fused.cpp": "int f(){return 1;}\n", "kern/unused.cpp": "int g(){return 2;}\n"})
    roles = _roles(code)
    assert ("tilt.py", "import") in roles and ("kern/fused.cpp", "native") in roles
    assert ("kern/unused.cpp", "native") not in roles
    assert code.code_bytes().native == len("int f(){return 1;}\n")


def test_python312_fstrings_parse_with_the_same_lines(tmp_path):
    src = 'x = {"a": 1}\n\ndef f():\n    return f"{x["a"]} and more"\n'
    code = _bundle(tmp_path, {"train_gpt.py": src})
    cf = code.files[0]
    assert cf.parse_error is None and cf.compat_text is not None
    tree = cf.tree()
    fn = [n for n in tree.body if getattr(n, "name", "") == "f"][0]
    assert fn.lineno == 3 and len(cf.compat_text.splitlines()) == len(src.splitlines())


def test_dynamic_exec_and_import_are_recorded_not_guessed(tmp_path):
    src = "import importlib\nname = input()\nmod = importlib.import_module(name)\nexec(mod.CODE)\n"
    code = _bundle(tmp_path, {"train_gpt.py": src})
    kinds = {(d.what, d.line) for d in code.dynamic}
    assert ("import", 3) in kinds and ("exec", 4) in kinds


def test_zip_bomb_is_reported_not_expanded(tmp_path):
    bomb = lzma.compress(b"\0" * (80 * 1024 * 1024), preset=1)  # 80 MB of zeros, ~12 KB compressed
    stub = f'import lzma, base64\nexec(lzma.decompress(base64.b85decode("{base64.b85encode(bomb).decode()}")))\n'
    t0 = time.perf_counter()
    code = _bundle(tmp_path, {"train_gpt.py": stub})
    assert time.perf_counter() - t0 < 10
    assert not [f for f in code.files if f.role == "decoded"]
    assert any("more than 64 MB" in why for _f, _l, why in code.undecodable)


def test_zip_bomb_surfaces_as_an_artifact_warning(tmp_path):
    from tests.helpers import audit_one

    bomb = zlib.compress(b"\0" * (70 * 1024 * 1024), 9)
    stub = f'import zlib, base64\nexec(zlib.decompress(base64.b64decode("{base64.b64encode(bomb).decode()}")))\n'
    rec = audit_one(write_folder(tmp_path, {"train_gpt.py": stub}), only_rules={"ARTIFACT-CODE-COUNTED"})
    hits = [f for f in rec.findings if f.rule == "ARTIFACT-CODE-COUNTED" and f.severity.value == "warning"]
    assert hits and "not expanded" in hits[0].message and hits[0].line == 2
