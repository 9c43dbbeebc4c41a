"""bpb_proof.json for any entrant: a tokenizer trained here (not pgolf's reference), a folder that
ships it with a proof, and what the audit makes of a true, a false and a missing proof."""
from __future__ import annotations

import hashlib
import io
import json
import random

import pytest

from auditor.evidence.bpb_proof import byte_tables
from tests.helpers import audit_one, write_folder

spm = pytest.importorskip("sentencepiece")

DOCS = [" ".join(random.Random(i).choice("naïve café ζeta 東京 alpha beta gamma delta, (x) 42\t".split(" ")) for _ in range(60))
        for i in range(40)]


@pytest.fixture(scope="module")
def model() -> bytes:
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(DOCS), model_writer=buf, vocab_size=340, hard_vocab_limit=False, model_type="bpe",
                                   byte_fallback=True, character_coverage=0.995, normalization_rule_name="identity",
                                   remove_extra_whitespaces=False, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    return buf.getvalue()


def _counts(model: bytes, docs: list[str]) -> tuple[int, int]:
    sp = spm.SentencePieceProcessor()
    sp.LoadFromSerializedProto(model)
    base, space, boundary = byte_tables(sp)
    table = 0
    for d in docs:
        prev = 1
        for t in sp.encode(d):
            table += base[t] + (1 if space[t] and not boundary[prev] else 0)
            prev = t
    return sum(len(d.encode()) for d in docs), table


def _folder(tmp_path, model: bytes, proof: dict | None):
    log = ("tokenizer_path: /data/tokenizers/my_tok.model\nseed:1\n"
           "step:10/10 val_loss:2.0 val_bpb:1.5 train_time:1000ms step_avg:100.0ms\n"
           "final_int8_zlib_roundtrip_exact val_loss:2.00000000 val_bpb:1.50000000\n")
    files = {"train_gpt.py": "print('x')\n", "train_seed1.log": log, "README.md": "# t\n",
             "submission.json": '{"author": "a", "github_id": "a", "val_bpb": 1.5}\n', "tok/my_tok.model": model}
    if proof is not None:
        files["bpb_proof.json"] = json.dumps(proof)
    return write_folder(tmp_path, files, track="track_non_record_16mb")


def _proof(model: bytes, docs: list[str], **over) -> dict:
    utf8, table = _counts(model, docs)
    sample = {"docs": docs, "utf8_bytes": utf8, "table_bytes": table, "decode_exact_docs": len(docs)}
    return {"format": "pgolf-bpb-proof/1", "tokenizer": "tok/my_tok.model", "tokenizer_sha256": hashlib.sha256(model).hexdigest(),
            "bos_id": 1, "val_sample": {**sample, **over}}


def _tok(rec):
    return [(f.severity.value, f.file) for f in rec.findings if f.rule == "TOKENIZER-BPB-ACCOUNTING"]


def test_no_proof_asks_for_one(tmp_path, model):
    assert _tok(audit_one(_folder(tmp_path, model, None))) == [("warning", "tok/my_tok.model")]


def test_a_true_proof_settles_the_tokenizer(tmp_path, model):
    rec = audit_one(_folder(tmp_path, model, _proof(model, DOCS[:10])))
    assert _tok(rec) == [("info", "bpb_proof.json")]
    (f,) = [f for f in rec.findings if f.rule == "TOKENIZER-BPB-ACCOUNTING"]
    assert any("decode(encode(doc)) == doc byte for byte for all 10" in e for e in f.evidence)


def test_a_false_claim_is_an_error(tmp_path, model):
    rec = audit_one(_folder(tmp_path, model, _proof(model, DOCS[:10], utf8_bytes=1)))
    assert ("error", "bpb_proof.json") in _tok(rec)


def test_a_document_the_tokenizer_cannot_round_trip_is_an_error(tmp_path, model):
    # SentencePiece's own space marker in the text comes back as a space: not the val text
    docs = DOCS[:3] + ["a\u2581b"]
    proof = _proof(model, DOCS[:3])
    proof["val_sample"] = {"docs": docs}
    rec = audit_one(_folder(tmp_path, model, proof))
    hits = [f for f in rec.findings if f.rule == "TOKENIZER-BPB-ACCOUNTING" and f.severity.value == "error"]
    assert hits and "decode(encode(doc)) differs" in hits[0].message
