"""na.summary: the table's shapes, parameters and mult-adds, and its memory estimate against the measured peak."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch import optim
from neural_arch.cli import main
from neural_arch.models.small import CNN, MLP, CharTransformer

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_rows_shapes_parameters_and_mult_adds():
    s = na.summary(CNN(channels=(4, 8), hidden=16), input_size=(2, 1, 28, 28))
    rows = {r.name: r for r in s.rows}
    conv = rows["features.0"]
    assert conv.kind == "Conv2d" and conv.output_shape == (2, 4, 28, 28) and conv.params == 4 * 9 + 4
    assert conv.mult_adds == 2 * 4 * 28 * 28 * 9
    fc = rows["classifier.1"]
    assert fc.kind == "Linear" and fc.output_shape == (2, 16) and fc.mult_adds == 2 * 8 * 7 * 7 * 16
    assert s.total_params == sum(p.numel() for p in CNN(channels=(4, 8), hidden=16).parameters())
    assert s.trainable_params == s.total_params and s.optimizer_bytes == 2 * s.grad_bytes
    text = str(s)
    assert "features.0 (Conv2d)" in text and f"{s.total_params:,}" in text and "estimated total" in text


def test_integer_inputs_and_frozen_parameters():
    model = CharTransformer(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    next(model.parameters()).requires_grad = False
    s = na.summary(model, input_size=(2, 8), dtypes=[na.int64])
    assert s.rows[0].output_shape == (2, 8, 11)
    assert 0 < s.trainable_params < s.total_params
    with pytest.raises(na.errors.ConfigError, match="give input_size"):
        na.summary(model)


@pytest.mark.parametrize("make, shape", [(lambda: MLP(hidden=(512, 256)), (256, 1, 28, 28)),
                                         (lambda: CNN(), (64, 1, 28, 28))], ids=["mlp", "cnn"])
def test_memory_estimate_against_the_measured_peak(make, shape, jit):
    """What one AdamW step allocates (gradients, moments, activations, temporaries), measured by tracemalloc
    (NumPy reports its buffers to it), against the estimate without what existed before (parameters, input).
    The estimate models the default (kernel) path, whose convolution works in chunks of images; the NumPy
    twins (NEURAL_ARCH_JIT=0) hold the whole batch's im2col columns at once, about twice the peak."""
    na.manual_seed(0)
    model = make()
    s = na.summary(model, input_size=shape)
    x, y = na.randn(*shape), na.tensor(np.zeros(shape[0], np.int64))
    tracemalloc.start()
    try:
        opt = optim.AdamW(model.parameters())
        F.cross_entropy(model(x), y).backward()
        opt.step()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = s.grad_bytes + s.optimizer_bytes + s.activation_bytes
    assert 0.5 < peak / estimate < 1.6, (peak, estimate)


def test_summary_command():
    result = CliRunner().invoke(main, ["summary", str(CONFIGS / "fashion_cnn.yaml")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "features.0 (Conv2d)" in result.output and "optimizer adamw (2 state arrays" in result.output
