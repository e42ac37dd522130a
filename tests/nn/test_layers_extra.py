"""The layers added for issue 25 as modules: torch's parameter names and shapes (a torch state_dict loads),
parity of forward and backward through ``check_layer``, and nn.Transformer."""

import numpy as np
import pytest
import torch
from test_layers import check_layer, rnd

import neural_arch as na
from neural_arch import nn
from neural_arch.errors import ConfigError, ShapeError

X4 = rnd(2, 4, 5, 6)

LAYERS = {  # name: (constructor args as a function of the library, inputs)
    "ConstantPad1d": (lambda nn: nn.ConstantPad1d((1, 2), 3.5), [rnd(2, 3, 4)]),
    "ConstantPad2d": (lambda nn: nn.ConstantPad2d(1, -1.0), [X4]),
    "ConstantPad3d": (lambda nn: nn.ConstantPad3d((1, 0, 0, 1, 2, 0), 0.5), [rnd(1, 2, 3, 4, 2)]),
    "ZeroPad1d": (lambda nn: nn.ZeroPad1d(2), [rnd(2, 3, 4)]),
    "ZeroPad2d": (lambda nn: nn.ZeroPad2d((1, 2, 0, 3)), [X4]),
    "ZeroPad3d": (lambda nn: nn.ZeroPad3d(1), [rnd(1, 2, 3, 4, 2)]),
    "ReflectionPad1d": (lambda nn: nn.ReflectionPad1d((2, 1)), [rnd(2, 3, 4)]),
    "ReflectionPad2d": (lambda nn: nn.ReflectionPad2d(2), [X4]),
    "ReflectionPad3d": (lambda nn: nn.ReflectionPad3d(1), [rnd(1, 2, 3, 4, 2)]),
    "ReplicationPad1d": (lambda nn: nn.ReplicationPad1d(3), [rnd(2, 3, 4)]),
    "ReplicationPad2d": (lambda nn: nn.ReplicationPad2d((0, 1, 2, 3)), [X4]),
    "ReplicationPad3d": (lambda nn: nn.ReplicationPad3d(2), [rnd(1, 2, 3, 4, 2)]),
    "CircularPad1d": (lambda nn: nn.CircularPad1d(2), [rnd(2, 3, 4)]),
    "CircularPad2d": (lambda nn: nn.CircularPad2d((1, 1, 2, 0)), [X4]),
    "CircularPad3d": (lambda nn: nn.CircularPad3d(1), [rnd(1, 2, 3, 4, 2)]),
    "PixelShuffle": (lambda nn: nn.PixelShuffle(2), [X4]),
    "PixelUnshuffle": (lambda nn: nn.PixelUnshuffle(2), [rnd(2, 3, 4, 6)]),
    "ChannelShuffle": (lambda nn: nn.ChannelShuffle(2), [X4]),
    "Upsample": (lambda nn: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False), [X4]),
    "UpsamplingNearest2d": (lambda nn: nn.UpsamplingNearest2d(size=(7, 9)), [X4]),
    "UpsamplingBilinear2d": (lambda nn: nn.UpsamplingBilinear2d(scale_factor=2), [X4]),
    "Unfold": (lambda nn: nn.Unfold(2, padding=1, stride=2), [X4]),
    "Fold": (lambda nn: nn.Fold((4, 5), 2), [rnd(2, 12, 12)]),
    "PairwiseDistance": (lambda nn: nn.PairwiseDistance(p=3), [rnd(4, 5), rnd(4, 5, seed=2)]),
    "CosineSimilarity": (lambda nn: nn.CosineSimilarity(dim=0), [rnd(4, 5), rnd(4, 5, seed=2)]),
    "PReLU": (lambda nn: nn.PReLU(4, 0.1), [X4]),
    "Hardshrink": (lambda nn: nn.Hardshrink(0.3), [X4]),
    "Softshrink": (lambda nn: nn.Softshrink(0.3), [X4]),
    "Tanhshrink": (lambda nn: nn.Tanhshrink(), [X4]),
    "Softsign": (lambda nn: nn.Softsign(), [X4]),
    "Threshold": (lambda nn: nn.Threshold(0.2, -1.0), [X4]),
    "RReLU (eval)": (lambda nn: nn.RReLU(0.1, 0.2), [X4]),
    "Softmax2d": (lambda nn: nn.Softmax2d(), [X4]),
    "LocalResponseNorm": (lambda nn: nn.LocalResponseNorm(3, 0.01, 0.5, 1.5), [X4]),
    "BatchNorm3d": (lambda nn: nn.BatchNorm3d(2), [rnd(3, 2, 3, 2, 2)]),
    "SyncBatchNorm": (lambda nn: nn.SyncBatchNorm(4), [X4]),
    "InstanceNorm1d": (lambda nn: nn.InstanceNorm1d(3, affine=True), [rnd(2, 3, 7)]),
    "InstanceNorm3d": (lambda nn: nn.InstanceNorm3d(2, affine=True), [rnd(2, 2, 3, 2, 2)]),
    "Conv3d": (lambda nn: nn.Conv3d(4, 6, (2, 3, 2), stride=(1, 2, 1), padding=(1, 0, 1), groups=2),
               [rnd(2, 4, 3, 5, 4)]),
    "Conv3d reflect": (lambda nn: nn.Conv3d(2, 3, 3, padding=1, padding_mode="reflect"), [rnd(1, 2, 3, 4, 3)]),
    "ConvTranspose1d": (lambda nn: nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1),
                        [rnd(2, 4, 5)]),
    "AdaptiveAvgPool1d": (lambda nn: nn.AdaptiveAvgPool1d(4), [rnd(2, 3, 9)]),
    "AdaptiveMaxPool1d": (lambda nn: nn.AdaptiveMaxPool1d(4), [rnd(2, 3, 9)]),
    "LPPool1d": (lambda nn: nn.LPPool1d(2, 3), [rnd(2, 3, 9)]),
    "LPPool2d": (lambda nn: nn.LPPool2d(2, (2, 3), stride=1), [X4]),
    "Dropout1d (eval)": (lambda nn: nn.Dropout1d(0.5), [rnd(2, 3, 4)]),
    "Dropout3d (eval)": (lambda nn: nn.Dropout3d(0.5), [rnd(2, 3, 4, 2, 2)]),
    "AlphaDropout (eval)": (lambda nn: nn.AlphaDropout(0.5), [X4]),
    "FeatureAlphaDropout (eval)": (lambda nn: nn.FeatureAlphaDropout(0.5), [X4]),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_parity(name):
    make, inputs = LAYERS[name]
    check_layer(lambda: make(nn), lambda: make(torch.nn), inputs, train="(eval)" not in name)


LOSSES = {  # name: (make(lib), float inputs, extra constant inputs as NumPy arrays)
    "TripletMarginLoss": (lambda nn: nn.TripletMarginLoss(margin=0.5, p=1), [rnd(4, 5), rnd(4, 5, seed=2),
                                                                               rnd(4, 5, seed=3)], []),
    "TripletMarginWithDistanceLoss": (lambda nn: nn.TripletMarginWithDistanceLoss(margin=0.5, swap=True),
                                      [rnd(4, 5), rnd(4, 5, seed=2), rnd(4, 5, seed=3)], []),
    "CosineEmbeddingLoss": (lambda nn: nn.CosineEmbeddingLoss(0.2), [rnd(4, 5), rnd(4, 5, seed=2)],
                            [np.array([1.0, -1.0, -1.0, 1.0])]),
    "MarginRankingLoss": (lambda nn: nn.MarginRankingLoss(0.1, reduction="sum"), [rnd(4), rnd(4, seed=2)],
                          [np.array([1.0, -1.0, -1.0, 1.0])]),
    "HingeEmbeddingLoss": (lambda nn: nn.HingeEmbeddingLoss(), [rnd(4, 3) + 0.05], [np.sign(rnd(4, 3, seed=5))]),
    "SoftMarginLoss": (lambda nn: nn.SoftMarginLoss(), [rnd(4, 3)], [np.sign(rnd(4, 3, seed=5))]),
    "MultiLabelSoftMarginLoss": (lambda nn: nn.MultiLabelSoftMarginLoss(), [rnd(4, 3)],
                                 [(rnd(4, 3, seed=5) > 0).astype(np.float64)]),
    "MultiMarginLoss": (lambda nn: nn.MultiMarginLoss(margin=0.7), [rnd(4, 5)], [np.array([0, 4, 2, 2])]),
    "MultiLabelMarginLoss": (lambda nn: nn.MultiLabelMarginLoss(), [rnd(2, 4)],
                             [np.array([[3, 0, -1, 1], [1, 2, 3, -1]])]),
    "PoissonNLLLoss": (lambda nn: nn.PoissonNLLLoss(), [rnd(4, 3)], [np.abs(rnd(4, 3, seed=5)) * 3]),
    "GaussianNLLLoss": (lambda nn: nn.GaussianNLLLoss(), [rnd(4, 3), np.abs(rnd(4, 3, seed=4)) + 0.1],
                        [rnd(4, 3, seed=5)]),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_module_parity(name):
    make, floats, consts = LOSSES[name]
    n = len(floats)

    def call(m, *a):
        if name == "GaussianNLLLoss":  # (input, target, var)
            return m(a[0], a[2].to(a[0].dtype), a[1])
        targets = [c.detach().to(a[0].dtype) if c.is_floating_point() else c for c in a[n:]]
        return m(*a[:n], *targets)

    check_layer(lambda: make(nn), lambda: make(torch.nn), floats + consts, call=call)


def test_ctc_loss_module():
    logits = rnd(6, 2, 4)
    targets, in_len, tg_len = np.array([[1, 2], [3, 3]]), np.array([6, 5]), np.array([2, 2])

    def call(m, x, *rest):
        lib_log_softmax = torch.log_softmax if isinstance(m, torch.nn.Module) else na.nn.functional.log_softmax
        return m(lib_log_softmax(x, -1), *rest)

    check_layer(lambda: nn.CTCLoss(), lambda: torch.nn.CTCLoss(), [logits, targets, in_len, tg_len], call=call)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_module(mode):
    ids, offsets = np.array([1, 2, 4, 5, 4, 3, 2]), np.array([0, 3, 3])
    check_layer(lambda: nn.EmbeddingBag(8, 3, mode=mode, padding_idx=2),
                lambda: torch.nn.EmbeddingBag(8, 3, mode=mode, padding_idx=2), [ids, offsets])
    assert np.all(nn.EmbeddingBag(8, 3, padding_idx=2).weight.detach().numpy()[2] == 0)


def test_conv3d_state_dict_and_init_bounds():
    ours, ref = nn.Conv3d(4, 6, 3, groups=2), torch.nn.Conv3d(4, 6, 3, groups=2)
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    bound = 1 / np.sqrt(2 * 27)
    assert np.abs(ours.weight.detach().numpy()).max() <= bound


def test_sync_batchnorm_conversion_keeps_weights_and_stats():
    net = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm1d(4)))
    net[1].running_mean.data[...] = 0.5
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    assert isinstance(converted[1], nn.SyncBatchNorm) and isinstance(converted[2][0], nn.SyncBatchNorm)
    np.testing.assert_array_equal(converted[1].running_mean.numpy(), 0.5)
    assert list(converted.state_dict()) == list(torch.nn.SyncBatchNorm.convert_sync_batchnorm(
        torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4),
                            torch.nn.Sequential(torch.nn.BatchNorm1d(4)))).state_dict())


# -- nn.Transformer ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [dict(), dict(norm_first=True, batch_first=True, activation="gelu")], ids=str)
def test_transformer_parity(kw):
    d, h = 8, 2
    bf = kw.get("batch_first", False)
    src = rnd(2, 5, d) if bf else rnd(5, 2, d)
    tgt = rnd(2, 4, d, seed=2) if bf else rnd(4, 2, d, seed=2)
    causal = np.triu(np.full((4, 4), -np.inf), 1)
    kpm = np.zeros((2, 5), bool)
    kpm[1, 3:] = True

    def call(m, s, t):
        if isinstance(m, torch.nn.Module):
            return m(s, t, tgt_mask=torch.tensor(causal, dtype=s.dtype), src_key_padding_mask=torch.tensor(kpm),
                     memory_key_padding_mask=torch.tensor(kpm))
        return m(s, t, tgt_mask=na.tensor(causal.astype(s.data.dtype)), src_key_padding_mask=na.tensor(kpm),
                 memory_key_padding_mask=na.tensor(kpm))

    make = lambda nn: nn.Transformer(d, h, 2, 1, dim_feedforward=16, dropout=0.0, **kw)  # noqa: E731
    check_layer(lambda: make(nn), lambda: make(torch.nn), [src, tgt], call=call)
    assert list(make(nn).state_dict()) == list(make(torch.nn).state_dict())


def test_transformer_mask_and_init():
    m = nn.Transformer.generate_square_subsequent_mask(4).numpy()
    np.testing.assert_array_equal(m, torch.nn.Transformer.generate_square_subsequent_mask(4).numpy())
    t = nn.Transformer(16, 2, 1, 1, 32)
    w = t.encoder.layers[0].linear1.weight.detach().numpy()  # Xavier-uniform: bound sqrt(6 / (16 + 32))
    assert np.abs(w).max() <= np.sqrt(6 / 48) and np.abs(w).max() > 0.8 * np.sqrt(6 / 48)
    with pytest.raises(ShapeError, match="batch size"):
        t(na.zeros(3, 2, 16), na.zeros(3, 4, 16))


def test_errors_are_typed():
    with pytest.raises(ConfigError, match="padding"):
        nn.ZeroPad2d((1, 2, 3))
    with pytest.raises(ShapeError, match="ReflectionPad2d"):
        nn.ReflectionPad2d(1)(na.zeros(4))
    with pytest.raises(ConfigError, match="mode"):
        nn.EmbeddingBag(3, 2, mode="median")


@pytest.mark.parametrize("head_bias", [False, True])
def test_adaptive_log_softmax(head_bias):
    target = np.array([0, 7, 3, 12, 9, 1])  # the head, both clusters

    def make(nn):
        return nn.AdaptiveLogSoftmaxWithLoss(8, 14, [4, 10], div_value=2.0, head_bias=head_bias)

    check_layer(lambda: make(nn), lambda: make(torch.nn), [rnd(6, 8), target], call=lambda m, x, t: m(x, t).output)
    check_layer(lambda: make(nn), lambda: make(torch.nn), [rnd(6, 8), target], call=lambda m, x, t: m(x, t).loss)
    check_layer(lambda: make(nn), lambda: make(torch.nn), [rnd(6, 8)], call=lambda m, x: m.log_prob(x))
    torch.manual_seed(0)
    ref = make(torch.nn)
    ours = make(nn)
    ours.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    x = rnd(6, 8).astype(np.float32)
    np.testing.assert_array_equal(ours.predict(na.tensor(x)).numpy(), ref.predict(torch.tensor(x)).numpy())
    with pytest.raises(ConfigError, match="cutoffs"):
        nn.AdaptiveLogSoftmaxWithLoss(8, 14, [10, 4])
