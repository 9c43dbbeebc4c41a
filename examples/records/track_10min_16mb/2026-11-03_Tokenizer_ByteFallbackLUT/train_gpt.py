import numpy as np
import sentencepiece as spm

def build_luts(sp):
    base = np.zeros(sp.vocab_size(), dtype=np.int16)
    for t in range(sp.vocab_size()):
        if sp.is_control(t) or sp.is_unknown(t) or sp.is_unused(t):
            continue
        piece = sp.id_to_piece(t)
        base[t] = len(piece.removeprefix("\u2581").encode("utf-8"))
    return base


print(build_luts(spm.SentencePieceProcessor(model_file="tok.model")))
