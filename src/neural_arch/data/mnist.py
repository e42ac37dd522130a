"""MNIST and Fashion-MNIST: 28x28 grey images in 10 classes, 60,000 for training, 10,000 for test.

Where the files come from, in order:

1. ``root`` if given (``train-images-idx3-ubyte.gz`` or the decompressed name),
2. system directories: Fashion-MNIST ships in Debian's ``dataset-fashion-mnist``
   package, under ``/usr/share/datasets/fashion-mnist``,
3. the cache, ``$NEURAL_ARCH_DATA/<name>`` or ``~/.cache/neural-arch/<name>``,
4. a download from the official URL (when ``download=True``), accepted only if
   the SHA-256 of the decompressed bytes is the published one, then kept in
   ``root`` (or the cache).

A sample is ``(image, label)``: a uint8 array of shape (28, 28) and an int,
like torchvision's (which gives a PIL image); ``transform`` (e.g.
``transforms.ToTensor()``) and ``target_transform`` apply to each.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from neural_arch.autograd.tensor import Tensor
from neural_arch.data.dataset import Dataset, _check_index
from neural_arch.data.idx import parse_idx, read_bytes
from neural_arch.errors import DataError
from neural_arch.io.atomic import atomic_write_bytes


def cache_dir(name: str) -> Path:
    base = os.environ.get("NEURAL_ARCH_DATA") or Path.home() / ".cache" / "neural-arch"
    return Path(base) / name


class MNIST(Dataset):
    """The MNIST handwritten digits. Args as ``torchvision.datasets.MNIST``, but ``root`` is optional."""

    name = "mnist"
    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    system_dirs: tuple[str, ...] = ()
    install_hint = ""
    files = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    # SHA-256 of the decompressed files
    sha256 = {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    }
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root: str | os.PathLike | None = None, train: bool = True, transform=None,
                 target_transform=None, download: bool = True):
        self.root = Path(root).expanduser() if root is not None else None
        self.train = bool(train)
        self.transform = transform
        self.target_transform = target_transform
        images_name, labels_name = self.files[self.train]
        images = parse_idx(self._fetch(images_name, download), images_name)
        labels = parse_idx(self._fetch(labels_name, download), labels_name)
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"{type(self).__name__}: expected images (N, H, W) and labels (N,), got "
                            f"{images.shape} and {labels.shape}; are the files swapped or from another dataset?")
        self.data = images.astype(np.uint8, copy=False)  # (N, 28, 28)
        self.targets = labels.astype(np.int64)  # (N,)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index):
        index = _check_index(index, len(self), type(self).__name__)
        image, label = self.data[index], int(self.targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    @property
    def get_batch(self):
        """Vectorised batches, when no per-sample transform has to run (see ``Dataset``)."""
        if self.transform is not None or self.target_transform is not None:
            return None
        return lambda indices: (Tensor._wrap(self.data[np.asarray(indices, dtype=np.int64)]),
                                Tensor._wrap(self.targets[np.asarray(indices, dtype=np.int64)]))

    # -- finding the files ------------------------------------------------------------------------
    def search_dirs(self) -> list[Path]:
        dirs = [self.root] if self.root is not None else []
        return dirs + [Path(d) for d in self.system_dirs] + [cache_dir(self.name)]

    def _fetch(self, base: str, download: bool) -> bytes:
        """The decompressed bytes of file ``base``, from the first place that has it."""
        for d in self.search_dirs():
            for candidate in (d / f"{base}.gz", d / base):
                if candidate.is_file():
                    return read_bytes(candidate)
        where = ", ".join(str(d) for d in self.search_dirs())
        if not download:
            raise DataError(f"{type(self).__name__}: '{base}' not found in {where}, and download=False")
        return self._download(base, where)

    def _download(self, base: str, where: str) -> bytes:
        target_dir = self.root if self.root is not None else cache_dir(self.name)
        errors = []
        for mirror in self.mirrors:
            url = f"{mirror}{base}.gz"
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    compressed = response.read()
                data = gzip.decompress(compressed)
            except (urllib.error.URLError, OSError, EOFError) as e:
                errors.append(f"{url}: {getattr(e, 'reason', e)}")
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest != self.sha256[base]:
                errors.append(f"{url}: SHA-256 of the decompressed file is {digest}, expected {self.sha256[base]}")
                continue
            atomic_write_bytes(target_dir / f"{base}.gz", compressed)
            return data
        raise DataError(
            f"{type(self).__name__}: '{base}' is not in {where}, and downloading it failed "
            f"({'; '.join(errors)}). If this machine is offline, copy the four IDX files "
            f"(train/t10k images/labels, .gz or not) into a directory and pass it as root="
            + self.install_hint
        )


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: clothing in 10 classes, MNIST's format and sizes."""

    name = "fashion-mnist"
    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    system_dirs = ("/usr/share/datasets/fashion-mnist",)
    install_hint = " (or install the Debian package dataset-fashion-mnist)"
    sha256 = {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    }
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
