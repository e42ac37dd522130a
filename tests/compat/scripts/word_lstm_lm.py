"""A PyTorch script in the shape of pytorch/examples' word_language_model (Embedding + LSTM +
Linear, truncated BPTT, gradient clipping, hand-written SGD, lr annealing), small and on a fixed
synthetic corpus. Run unchanged by real PyTorch and by `python -m neural_arch.compat`.

    python word_lstm_lm.py --init INIT.npz --out OUT.json
"""

import argparse
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class RNNModel(nn.Module):
    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.0):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        self.nhid, self.nlayers = nhid, nlayers

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        decoded = self.decoder(output)
        decoded = decoded.view(-1, self.ntoken)
        return F.log_softmax(decoded, dim=1), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid), weight.new_zeros(self.nlayers, bsz, self.nhid))


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous()


def get_batch(source, i, bptt):
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i:i + seq_len]
    target = source[i + 1:i + 1 + seq_len].view(-1)
    return data, target


def repackage_hidden(h):
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


def evaluate(model, source, bptt, criterion, ntokens):
    model.eval()
    total_loss = 0.0
    hidden = model.init_hidden(source.size(1))
    with torch.no_grad():
        for i in range(0, source.size(0) - 1, bptt):
            data, targets = get_batch(source, i, bptt)
            output, hidden = model(data, hidden)
            hidden = repackage_hidden(hidden)
            total_loss += len(data) * criterion(output, targets).item()
    return total_loss / (len(source) - 1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--init", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--lr", type=float, default=5.0)
    parser.add_argument("--clip", type=float, default=0.25)
    parser.add_argument("--bptt", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(1111)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    ntokens = 30
    rng = np.random.default_rng(0)
    corpus = np.cumsum(rng.integers(1, 4, size=600)) % ntokens  # a learnable pattern
    train_data = batchify(torch.from_numpy(corpus[:480].astype(np.int64)), 8).to(device)
    val_data = batchify(torch.from_numpy(corpus[480:].astype(np.int64)), 4).to(device)

    model = RNNModel(ntokens, 16, 24, 2).to(device)
    if os.path.exists(args.init):
        model.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(args.init).items()})
    else:
        np.savez(args.init, **{k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
    criterion = nn.NLLLoss()
    lr = args.lr
    losses, vals = [], []
    best_val_loss = None
    for epoch in range(1, args.epochs + 1):
        model.train()
        hidden = model.init_hidden(8)
        for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
            data, targets = get_batch(train_data, i, args.bptt)
            model.zero_grad()
            hidden = repackage_hidden(hidden)
            output, hidden = model(data, hidden)
            loss = criterion(output, targets)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(p.grad, alpha=-lr)
            losses.append(loss.item())
        val_loss = evaluate(model, val_data, args.bptt, criterion, ntokens)
        vals.append([val_loss, math.exp(val_loss)])
        if not best_val_loss or val_loss < best_val_loss:
            best_val_loss = val_loss
        else:
            lr /= 4.0
    with open(args.out, "w") as f:
        json.dump({"losses": losses, "vals": vals, "lr": lr}, f)


if __name__ == "__main__":
    main()
