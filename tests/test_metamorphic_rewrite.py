"""The metamorphic generator keeps meaning on shapes found in real records (tests/metamorphic/rewrite.py).
Each program here is our own; it is run before and after the rewrite and must print the same."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.metamorphic.rewrite import mutate

# Records keep "control" parameters in fp32 by matching parameter names against a comma-separated
# pattern string (``CONTROL_TENSOR_NAME_PATTERNS = "attn_scale,mlp_scale,..."``); renaming the
# attribute ``attn_scale`` silently changed which parameters matched (seen on PR #779's train_gpt.py).
PATTERN_LIST = textwrap.dedent('''
    import os
    PATTERNS = tuple(p for p in os.environ.get("PATTERNS", "attn_scale,mlp_scale").split(",") if p)


    class Block:
        def __init__(self):
            self.attn_scale = 1.0
            self.mlp_scale = 2.0
            self.weight_like = 3.0


    def control_names(obj):
        return sorted(k for k in obj.__dict__ if any(p in k for p in PATTERNS))


    print(control_names(Block()), Block().weight_like)
''')


def run(src: str, tmp_path, name: str) -> str:
    path = tmp_path / name
    path.write_text(src, encoding="utf-8")
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, check=True, timeout=60).stdout


def test_an_attribute_named_inside_a_pattern_string_keeps_its_name(tmp_path):
    m = mutate({"prog.py": PATTERN_LIST}, 0, ["rename_attributes"])
    out = m.files["prog.py"]
    assert m.applied and "weight_like" not in out  # the transform still renames what no string names
    assert "self.attn_scale" in out and "self.mlp_scale" in out
    assert run(out, tmp_path, "after.py") == run(PATTERN_LIST, tmp_path, "before.py") == "['attn_scale', 'mlp_scale'] 3.0\n"
