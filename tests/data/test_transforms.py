"""Image transforms: exact values against hand-computed results and torch's own ops."""

import numpy as np
import pytest
import torch

import neural_arch as na
from neural_arch.data.transforms import (
    Compose,
    Lambda,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    ToTensor,
)
from neural_arch.errors import ConfigError, DTypeError, ShapeError


def _img(h=5, w=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w), dtype=np.uint8)


def test_to_tensor_scales_uint8_and_moves_channels():
    gray = _img()
    t = ToTensor()(gray)
    assert isinstance(t, na.Tensor) and t.shape == (1, 5, 7) and t.dtype == na.float32
    np.testing.assert_array_equal(t.numpy()[0], gray.astype(np.float32) / 255)
    rgb = np.random.default_rng(1).integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    t = ToTensor()(rgb)
    assert t.shape == (3, 4, 6)
    np.testing.assert_array_equal(t.numpy()[2], rgb[:, :, 2] / np.float32(255))
    # float pixels keep their values
    f = np.random.default_rng(2).random((4, 6)).astype(np.float64)
    np.testing.assert_array_equal(ToTensor()(f).numpy()[0], f.astype(np.float32))


def test_to_tensor_errors():
    with pytest.raises(ShapeError, match="ToTensor"):
        ToTensor()(np.zeros((1, 2, 3, 4), np.uint8))
    with pytest.raises(DTypeError, match="ToTensor"):
        ToTensor()([[1, 2]])


def test_normalize_matches_torch_formula_per_channel():
    x = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    ours = Normalize(mean, std)(na.tensor(x))
    ref = (torch.from_numpy(x) - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6)
    # one value broadcasts over every channel; NumPy in -> NumPy out
    out = Normalize((0.5,), (0.5,))(x)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, (x - 0.5) / 0.5, rtol=1e-6)


def test_normalize_errors():
    with pytest.raises(ConfigError, match="std"):
        Normalize((0.0,), (0.0,))
    with pytest.raises(ConfigError, match="mean has 2"):
        Normalize((0.0, 1.0), (1.0,))
    with pytest.raises(ShapeError, match="channels"):
        Normalize((0, 0), (1, 1))(np.zeros((3, 2, 2), np.float32))
    with pytest.raises(DTypeError, match="ToTensor first"):
        Normalize((0,), (1,))(np.zeros((1, 2, 2), np.uint8))


def test_random_crop_is_a_window_of_the_padded_image():
    img = _img(6, 6).astype(np.float32)[None]  # (1, 6, 6)
    padded = np.pad(img, ((0, 0), (2, 2), (2, 2)))
    crop = RandomCrop(6, padding=2, generator=na.Generator(3))
    seen = set()
    for _ in range(40):
        out = crop(img)
        assert out.shape == (1, 6, 6)
        hits = [(t, c) for t in range(5) for c in range(5) if np.array_equal(padded[:, t:t + 6, c:c + 6], out)]
        assert hits, "crop is not a window of the zero-padded image"
        seen.add(hits[0])
    assert len(seen) > 5  # the offset really is random


def test_random_crop_is_reproducible_with_a_seed():
    img = _img(8, 8)
    a = [RandomCrop(5, generator=na.Generator(7))(img) for _ in range(3)]
    b = [RandomCrop(5, generator=na.Generator(7))(img) for _ in range(3)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    na.manual_seed(1)
    c = RandomCrop(5)(img)
    na.manual_seed(1)
    np.testing.assert_array_equal(c, RandomCrop(5)(img))


def test_random_crop_padding_modes_and_fill():
    img = np.arange(9, dtype=np.float32).reshape(1, 3, 3)
    full = RandomCrop(5, padding=1, fill=-1.0)  # a 5x5 crop of a 5x5 padded image: the padded image itself
    np.testing.assert_array_equal(full(img), np.pad(img, ((0, 0), (1, 1), (1, 1)), constant_values=-1.0))
    refl = RandomCrop(5, padding=1, padding_mode="reflect")(img)
    np.testing.assert_array_equal(refl, np.pad(img, ((0, 0), (1, 1), (1, 1)), mode="reflect"))


def test_random_crop_batched_draws_per_image():
    batch = np.stack([np.full((1, 4, 4), i, np.float32) + np.arange(16).reshape(1, 4, 4) for i in range(64)])
    out = RandomCrop(4, padding=2, batched=True, generator=na.Generator(0))(na.tensor(batch))
    assert isinstance(out, na.Tensor) and out.shape == (64, 1, 4, 4)
    padded = np.pad(batch, ((0, 0), (0, 0), (2, 2), (2, 2)))
    offsets = set()
    for n in range(64):
        hit = [(t, c) for t in range(5) for c in range(5)
               if np.array_equal(padded[n, :, t:t + 4, c:c + 4], out.numpy()[n])]
        assert hit
        offsets.add(hit[0])
    assert len(offsets) > 5


def test_random_crop_errors():
    with pytest.raises(ShapeError, match="larger than the padded"):
        RandomCrop(10)(np.zeros((1, 4, 4)))
    with pytest.raises(ConfigError, match="padding_mode"):
        RandomCrop(4, padding_mode="wrap")
    with pytest.raises(ConfigError, match="size"):
        RandomCrop(0)
    with pytest.raises(ShapeError, match="RandomCrop"):
        RandomCrop(2)(np.zeros(4))


def test_horizontal_flip_probability_and_values():
    img = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0)(img), img[..., ::-1])
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0)(img), img)
    flip = RandomHorizontalFlip(generator=na.Generator(0))
    flipped = sum(np.array_equal(flip(img), img[..., ::-1]) for _ in range(400))
    assert 150 < flipped < 250
    with pytest.raises(ConfigError, match="p must be"):
        RandomHorizontalFlip(p=1.5)


def test_horizontal_flip_batched():
    batch = np.random.default_rng(0).random((100, 1, 3, 4)).astype(np.float32)
    out = RandomHorizontalFlip(batched=True, generator=na.Generator(1))(batch)
    flipped = [np.array_equal(out[n], batch[n, :, :, ::-1]) for n in range(100)]
    kept = [np.array_equal(out[n], batch[n]) for n in range(100)]
    assert all(f or k for f, k in zip(flipped, kept))
    assert 30 < sum(flipped) < 70


def test_compose_runs_in_order():
    tf = Compose([ToTensor(), Lambda(lambda t: t * 2), Normalize((0.5,), (0.5,))])
    img = _img()
    np.testing.assert_allclose(tf(img).numpy()[0], (img / 255 * 2 - 0.5) / 0.5, rtol=1e-6, atol=1e-6)
    assert "ToTensor" in repr(tf)
    with pytest.raises(ConfigError, match="callable"):
        Compose([1])


def test_transforms_compose_inside_a_dataloader():
    """A dataset's ``transform`` runs per sample; the DataLoader stacks the results."""
    from neural_arch.data import DataLoader, Dataset

    images = np.random.default_rng(0).integers(0, 256, size=(10, 28, 28), dtype=np.uint8)

    class Images(Dataset):
        def __init__(self, transform):
            self.transform = transform

        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return self.transform(images[i]), i % 3

    tf = Compose([ToTensor(), RandomCrop(28, padding=4), RandomHorizontalFlip(), Normalize((0.5,), (0.25,))])
    batches = list(DataLoader(Images(tf), batch_size=4, shuffle=True, generator=na.Generator(0)))
    assert [b[0].shape for b in batches] == [(4, 1, 28, 28), (4, 1, 28, 28), (2, 1, 28, 28)]
    assert batches[0][0].dtype == na.float32 and batches[0][1].dtype == na.int64
    x = np.concatenate([b[0].numpy() for b in batches])
    assert x.min() >= (0 - 0.5) / 0.25 - 1e-6 and x.max() <= (1 - 0.5) / 0.25 + 1e-6
