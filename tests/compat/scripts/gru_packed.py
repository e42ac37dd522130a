"""A PyTorch script: a bidirectional GRU sequence classifier over variable-length token sequences,
padded with pad_sequence and packed with pack_padded_sequence (enforce_sorted=False), Adam.
Small, fixed synthetic data; run unchanged by real PyTorch and by `python -m neural_arch.compat`.

    python gru_packed.py --init INIT.npz --out OUT.json
"""

import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence


class Classifier(nn.Module):
    def __init__(self, vocab, emb, hidden, classes):
        super().__init__()
        self.embed = nn.Embedding(vocab, emb, padding_idx=0)
        self.gru = nn.GRU(emb, hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, classes)

    def forward(self, tokens, lengths):
        x = self.embed(tokens)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, h = self.gru(packed)
        out, out_lengths = pad_packed_sequence(out, batch_first=True)
        pooled = out.sum(dim=1) / out_lengths.unsqueeze(1).to(out.dtype)
        return self.fc(torch.cat([h[-2], h[-1]], dim=1) + pooled)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--init", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    vocab, n = 20, 24
    seqs = [rng.integers(1, vocab, size=int(rng.integers(2, 9))) for _ in range(n)]
    labels = torch.tensor([int((s > vocab // 2).mean() > 0.5) for s in seqs])
    tokens = pad_sequence([torch.from_numpy(s) for s in seqs], batch_first=True)
    lengths = torch.tensor([len(s) for s in seqs])

    model = Classifier(vocab, 8, 10, 2)
    if os.path.exists(args.init):
        model.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(args.init).items()})
    else:
        np.savez(args.init, **{k: v.detach().numpy() for k, v in model.state_dict().items()})
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    criterion = nn.CrossEntropyLoss()
    losses = []
    for _ in range(args.steps):
        optimizer.zero_grad()
        loss = criterion(model(tokens, lengths), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        accuracy = (model(tokens, lengths).argmax(dim=1) == labels).float().mean().item()
    with open(args.out, "w") as f:
        json.dump({"losses": losses, "accuracy": accuracy}, f)


if __name__ == "__main__":
    main()
