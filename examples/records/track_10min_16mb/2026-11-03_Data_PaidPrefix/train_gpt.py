import torch
paid_prefix_tokens = torch.load("prefix.pt")

def eval_val(model, x, y):
    nll = model(x, y)
    match = paid_prefix_tokens[: y.numel()] == y
    return (nll * (~match)).sum()


print(eval_val(torch.nn.Identity(), torch.zeros(4), torch.zeros(4)))
