"""IDX files and the MNIST / Fashion-MNIST datasets, on tiny files made here (never downloaded).

The download path is exercised against a real HTTP server on localhost.
"""

import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from neural_arch.data import MNIST, DataLoader, FashionMNIST, read_idx, transforms, write_idx
from neural_arch.data.idx import idx_bytes
from neural_arch.errors import DataError

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def make_split(root, prefix, n, rng, compress=True):
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    ext = ".gz" if compress else ""
    write_idx(images, Path(root) / f"{prefix}-images-idx3-ubyte{ext}")
    write_idx(labels, Path(root) / f"{prefix}-labels-idx1-ubyte{ext}")
    return images, labels


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    arr = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    out = read_idx(write_idx(arr, tmp_path / name))
    assert out.dtype == np.dtype(dtype) and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)


def test_idx_is_big_endian_as_specified(tmp_path):
    # the MNIST label header, written out by hand: magic 0x00000801, 3 items
    raw = bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1])
    (tmp_path / "l").write_bytes(raw)
    assert read_idx(tmp_path / "l").tolist() == [7, 2, 1]
    assert idx_bytes(np.array([7, 2, 1], np.uint8)) == raw
    assert idx_bytes(np.array([1], ">i4"))[-4:] == b"\x00\x00\x00\x01"


@pytest.mark.parametrize("data, match", [
    (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01", "declares shape \\(5,\\)"),
    (b"PK\x03\x04", "not an IDX file"),
    (b"\x00\x00\x08\x03\x00\x00", "truncated inside its header"),
])
def test_bad_idx_files(tmp_path, data, match):
    (tmp_path / "f").write_bytes(data)
    with pytest.raises(DataError, match=match):
        read_idx(tmp_path / "f")


def test_damaged_gzip(tmp_path):
    (tmp_path / "f.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(100, np.uint8)))[:-10])
    with pytest.raises(DataError, match="damaged gzip"):
        read_idx(tmp_path / "f.gz")


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_from_root(tmp_path, compress):
    rng = np.random.default_rng(0)
    images, labels = make_split(tmp_path, "train", 7, rng, compress)
    make_split(tmp_path, "t10k", 3, rng, compress)
    train = MNIST(tmp_path, train=True, download=False)
    assert len(train) == 7 and len(MNIST(tmp_path, train=False, download=False)) == 3
    img, label = train[2]
    assert img.dtype == np.uint8 and img.shape == (28, 28) and isinstance(label, int)
    np.testing.assert_array_equal(img, images[2])
    assert label == labels[2]
    x, y = next(iter(DataLoader(train, batch_size=4)))  # the vectorised get_batch path
    assert x.shape == (4, 28, 28) and y.dtype == np.int64
    np.testing.assert_array_equal(x.numpy(), images[:4])


def test_transforms_apply_per_sample(tmp_path):
    rng = np.random.default_rng(1)
    images, labels = make_split(tmp_path, "t10k", 5, rng)
    ds = FashionMNIST(tmp_path, train=False, transform=transforms.ToTensor(), target_transform=lambda t: t + 100)
    x, y = next(iter(DataLoader(ds, batch_size=5)))
    assert x.shape == (5, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x.numpy()[:, 0], images / 255.0, rtol=1e-6)
    assert y.numpy().tolist() == (labels.astype(int) + 100).tolist()


def test_swapped_files_are_reported(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = make_split(tmp_path, "t10k", 4, rng)
    write_idx(labels, tmp_path / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(DataError, match="swapped"):
        MNIST(tmp_path, train=False, download=False)


def test_missing_without_download(tmp_path):
    class Nowhere(MNIST):
        name = "nowhere-test"
    with pytest.raises(DataError, match="not found in .*download=False"):
        Nowhere(tmp_path, train=False, download=False)


class _Server:
    """A real HTTP server on localhost serving one directory."""

    def __init__(self, directory):
        handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(directory), **k)  # noqa: E731
        http.server.SimpleHTTPRequestHandler.log_message = lambda *a: None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def test_download_verifies_the_checksum_then_keeps_the_files(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    rng = np.random.default_rng(2)
    images, labels = make_split(served, "t10k", 6, rng)
    digests = {f.name[:-3]: hashlib.sha256(gzip.decompress(f.read_bytes())).hexdigest() for f in served.iterdir()}
    root = tmp_path / "root"
    with _Server(served) as server:
        class Local(MNIST):
            mirrors = [server.url]
            sha256 = dict(MNIST.sha256, **digests)
            name = "local-test"
        ds = Local(root, train=False)
        np.testing.assert_array_equal(ds.data, images)
        assert sorted(p.name for p in root.iterdir()) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]

        class Tampered(Local):
            sha256 = dict(Local.sha256, **{"t10k-labels-idx1-ubyte": "0" * 64})
        with pytest.raises(DataError, match="SHA-256 of the decompressed file is [0-9a-f]{64}, expected 0000"):
            Tampered(tmp_path / "other", train=False)
        assert not (tmp_path / "other" / "t10k-labels-idx1-ubyte.gz").exists()


def test_offline_download_fails_with_a_clear_message(tmp_path):
    class Offline(FashionMNIST):
        mirrors = ["http://127.0.0.1:9/"]  # the discard port: connection refused
        system_dirs = ()
        name = "offline-test"
    with pytest.raises(DataError, match="downloading it failed .*offline.*dataset-fashion-mnist"):
        Offline(tmp_path, train=False)


def test_real_fashion_mnist_from_the_debian_package():
    # `make test` installs the package when it is missing (the Makefile's FASHION_MNIST target)
    assert (DEBIAN / "t10k-images-idx3-ubyte.gz").exists(), (
        f"{DEBIAN} is missing: `make test` installs it (apt-get install dataset-fashion-mnist, as root)")
    test = FashionMNIST(train=False, download=False)
    assert len(test) == 10000 and test.data.shape == (10000, 28, 28)
    assert np.bincount(test.targets).tolist() == [1000] * 10  # balanced classes
    raw = gzip.decompress((DEBIAN / "t10k-labels-idx1-ubyte.gz").read_bytes())
    assert hashlib.sha256(raw).hexdigest() == FashionMNIST.sha256["t10k-labels-idx1-ubyte"]
    assert 0.27 < test.data.mean() / 255 < 0.30  # Fashion-MNIST's known pixel mean, ~0.286
