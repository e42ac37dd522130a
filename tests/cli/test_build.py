"""What a config builds: a seeded validation split held out of the training images, the test set kept apart."""

from pathlib import Path

import numpy as np

from neural_arch.cli.build import build_run, split_indices
from neural_arch.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_split_indices_are_seeded_disjoint_and_complete():
    train, val = split_indices(100, 0.2, seed=5)
    assert len(val) == 20 and len(train) == 80
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(100))
    again = split_indices(100, 0.2, seed=5)
    assert np.array_equal(again[1], val) and not np.array_equal(split_indices(100, 0.2, seed=6)[1], val)


def test_images_hold_out_a_validation_split_and_keep_the_test_set():
    run = build_run(load_config(CONFIGS / "fashion_mlp.yaml", ["data.val_fraction=0.1", "data.prefetch=0"]))
    train_x = run.train_loader.dataset.tensors[0].numpy()
    val_x = run.val_loader.dataset.tensors[0].numpy()
    test_x = run.test_loader.dataset.tensors[0].numpy()
    assert (len(train_x), len(val_x), len(test_x)) == (54000, 6000, 10000)
    # no validation image is also a training image (compare raw bytes of each image)
    train_keys = {row.tobytes() for row in train_x.reshape(len(train_x), -1)}
    assert sum(row.tobytes() in train_keys for row in val_x.reshape(len(val_x), -1)) <= 5  # exact duplicates in the data
    assert "6,000 held out for validation (seed 0)" in run.data_description
