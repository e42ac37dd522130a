"""A model and a data set of your own, trained by `neural-arch train` through `class_path` (see README.md here).

Nothing here is part of neural-arch: it is the file a user writes. The config names
`my_code.SmallConvNet` and `my_code.Blobs`; run the command from this directory (or
put it on PYTHONPATH) so that `my_code` can be imported.
"""

import numpy as np

from neural_arch import nn
from neural_arch.data import Dataset


class SmallConvNet(nn.Module):
    """(B, 1, 28, 28) -> (B, num_classes): one conv block, global average pooling, a linear head."""

    def __init__(self, channels: int = 16, num_classes: int = 10, dropout: float = 0.1):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(channels, 2 * channels, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * channels, num_classes))

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))  # (B, 2C)


class MLP(nn.Module):
    """(B, in_features) -> (B, num_classes)."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.net(x)


class Blobs(Dataset):
    """``n`` points in ``dim`` dimensions around ``classes`` Gaussian centres; (x float32 (dim,), label)."""

    def __init__(self, n: int = 600, dim: int = 2, classes: int = 3, seed: int = 0):
        rng = np.random.default_rng(seed)
        centres = rng.normal(scale=4.0, size=(classes, dim))
        self.y = rng.integers(0, classes, n)
        self.x = (centres[self.y] + rng.normal(size=(n, dim))).astype(np.float32)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])
