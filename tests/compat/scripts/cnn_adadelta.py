"""A PyTorch script in the shape of pytorch/examples' MNIST (a CNN, Adadelta, StepLR), small
and on fixed synthetic data. Run unchanged by real PyTorch and by `python -m neural_arch.compat`.

    python cnn_adadelta.py --init INIT.npz --out OUT.json [--ckpt CKPT]

If INIT.npz does not exist the script writes its fresh weights there; otherwise it starts from them.
"""

import argparse
import json
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, TensorDataset


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, 1)
        self.conv2 = nn.Conv2d(4, 8, 3, 1)
        self.fc1 = nn.Linear(8 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def train(model, device, loader, optimizer, losses):
    model.train()
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())


def test(model, device, loader):
    model.eval()
    test_loss, correct = 0.0, 0
    with torch.no_grad():
        for data, target in loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    return test_loss / len(loader.dataset), correct


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--init", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--ckpt", default=None)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(1)
    use_cuda = torch.cuda.is_available()
    use_mps = torch.backends.mps.is_available()
    device = torch.device("cuda" if use_cuda else "mps" if use_mps else "cpu")

    rng = np.random.default_rng(0)
    images = rng.standard_normal((96, 1, 12, 12)).astype(np.float32)
    labels = (images[:, 0, 3:6, 3:6].sum(axis=(1, 2)) > 0).astype(np.int64) + 2 * (images[:, 0, 6, 6] > 0)
    train_set = TensorDataset(torch.from_numpy(images[:64]), torch.from_numpy(labels[:64]))
    test_set = TensorDataset(torch.from_numpy(images[64:]), torch.from_numpy(labels[64:]))
    train_loader = DataLoader(train_set, batch_size=16, shuffle=False)
    test_loader = DataLoader(test_set, batch_size=32)

    model = Net().to(device)
    if os.path.exists(args.init):
        model.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(args.init).items()})
    else:
        np.savez(args.init, **{k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    losses, tests = [], []
    for _ in range(args.epochs):
        train(model, device, train_loader, optimizer, losses)
        tests.append(test(model, device, test_loader))
        scheduler.step()

    result = {"losses": losses, "tests": tests, "lr": scheduler.get_last_lr()}
    if args.ckpt:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": args.epochs},
                   args.ckpt)
        ckpt = torch.load(args.ckpt, weights_only=True)
        again = Net()
        again.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        result["reloaded_test"] = test(again, device, test_loader)
        result["epoch"] = ckpt["epoch"]
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
