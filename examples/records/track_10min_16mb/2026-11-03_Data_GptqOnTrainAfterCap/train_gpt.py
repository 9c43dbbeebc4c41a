import glob, numpy as np, torch
train_files = "data/fineweb_train_*.bin"
val_files = "data/fineweb_val_*.bin"

def load_data_shard(path):
    return np.fromfile(path, dtype=np.uint16)

def eval_val(model, tokens):
    return model(tokens).mean()

def main(model, opt, loader, val_tokens, steps):
    for step in range(steps):
        loss = model(loader.next_batch())
        loss.backward()
        opt.step()
    hessians = collect_hessians(model, [load_data_shard(f) for f in sorted(glob.glob(train_files))[:1]])
    return eval_val(model, val_tokens)

def collect_hessians(model, batches):
    return [b for b in batches]


if __name__ == "__main__":
    main(None, None, None, None, 0)
