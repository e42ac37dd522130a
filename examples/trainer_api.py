"""The training stack from Python, without the command line: data, model, Trainer, checkpoint, resume.

    python examples/trainer_api.py                 # 2 epochs of an MLP on Fashion-MNIST, then 1 more resumed
    python examples/trainer_api.py --root DIR      # IDX files in DIR (default: the usual places, then download)

The same as `neural-arch train configs/fashion_mlp.yaml --set train.epochs=2` and a
`--resume`, spelled out, so each piece can be read and swapped.
"""

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

import neural_arch as na
import neural_arch.nn as nn
from neural_arch import optim
from neural_arch.data import DataLoader, FashionMNIST, TensorDataset
from neural_arch.train import Classification, JSONLLogger, ProgressBar, Trainer

# NEURAL_ARCH_EXAMPLE_SMOKE=1 (the test suite): 512 training and 256 test images
SMOKE = os.environ.get("NEURAL_ARCH_EXAMPLE_SMOKE") == "1"


def datasets(root):
    train, test = FashionMNIST(root, train=True), FashionMNIST(root, train=False)
    x_train, x_test = train.data.astype(np.float32) / 255.0, test.data.astype(np.float32) / 255.0
    y_train, y_test = train.targets, test.targets
    if SMOKE:
        x_train, y_train, x_test, y_test = x_train[:512], y_train[:512], x_test[:256], y_test[:256]
    mean, std = x_train.mean(), x_train.std()  # normalise with the training set's statistics
    return (TensorDataset((x_train[:, None] - mean) / std, y_train),
            TensorDataset((x_test[:, None] - mean) / std, y_test))


def make_trainer(train_set, test_set, run_dir, epochs):
    na.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    optimizer = optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    train_loader = DataLoader(train_set, batch_size=128, shuffle=True, drop_last=True, generator=na.Generator(0))
    test_loader = DataLoader(test_set, batch_size=1000)
    return Trainer(model, optimizer, train_loader, task=Classification(), val_loader=test_loader, max_epochs=epochs,
                   run_dir=run_dir, callbacks=[ProgressBar(), JSONLLogger(Path(run_dir) / "metrics.jsonl")])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="directory with the Fashion-MNIST IDX files")
    args = parser.parse_args()
    train_set, test_set = datasets(args.root)
    with tempfile.TemporaryDirectory() as run_dir:
        first = make_trainer(train_set, test_set, run_dir, epochs=2)
        print("after 2 epochs:", first.fit())
        ckpt = first.checkpoint_path  # written atomically at the end of fit()
        print("checkpoint:", ckpt, f"({ckpt.stat().st_size:,} bytes)")
        # A fresh trainer (as in a new process) continues where the first one stopped.
        again = make_trainer(train_set, test_set, run_dir, epochs=3)
        print("after a 3rd, resumed epoch:", again.fit(resume_from=ckpt))


if __name__ == "__main__":
    main()
