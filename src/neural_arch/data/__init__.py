"""Layer 5: data. Datasets, samplers, the DataLoader, and the datasets we ship or can fetch.

Mirrors ``torch.utils.data`` (Dataset, TensorDataset, Subset, random_split,
DataLoader, default_collate) plus ``torchvision.datasets``' MNIST and
FashionMNIST and a character-level Tiny Shakespeare.
"""

from neural_arch.data import transforms
from neural_arch.data.dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from neural_arch.data.idx import read_idx, write_idx
from neural_arch.data.loader import DataLoader, default_collate
from neural_arch.data.mnist import MNIST, FashionMNIST
from neural_arch.data.sampler import BatchSampler, DistributedSampler, RandomSampler, Sampler, SequentialSampler
from neural_arch.data.text import CharTokenizer, CharWindows, TinyShakespeare, load_tiny_shakespeare

__all__ = [
    "BatchSampler", "CharTokenizer", "CharWindows", "ConcatDataset", "DataLoader", "Dataset", "DistributedSampler",
    "FashionMNIST", "MNIST", "RandomSampler", "Sampler", "SequentialSampler", "Subset", "TensorDataset",
    "TinyShakespeare",
    "default_collate", "load_tiny_shakespeare", "random_split", "read_idx", "transforms", "write_idx",
]
