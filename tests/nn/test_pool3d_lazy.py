"""3-d pools, unpooling, the ``*_with_indices`` names, in-place activations, lazy modules and the legacy
names: parity with torch (forward, backward, float64 and float32, indices exactly), gradcheck."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from test_layers import check_layer, rnd

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch import nn
from neural_arch.errors import ConfigError, GradientError, IndexingError
from parity import check, compare, gradcheck, randn, reference

V = randn(2, 3, 5, 6, 4, seed=1)

POOLS = {
    "max_pool3d": (lambda x: F.max_pool3d(x, 2), lambda x: TF.max_pool3d(x, 2)),
    "max_pool3d_pad_stride_dilation": (lambda x: F.max_pool3d(x, (2, 3, 2), (1, 2, 1), (1, 1, 0), (2, 1, 1)),
                                       lambda x: TF.max_pool3d(x, (2, 3, 2), (1, 2, 1), (1, 1, 0), (2, 1, 1))),
    "max_pool3d_ceil": (lambda x: F.max_pool3d(x, 3, 2, 1, ceil_mode=True),
                        lambda x: TF.max_pool3d(x, 3, 2, 1, ceil_mode=True)),
    "avg_pool3d": (lambda x: F.avg_pool3d(x, 2), lambda x: TF.avg_pool3d(x, 2)),
    "avg_pool3d_pad_exclude": (lambda x: F.avg_pool3d(x, 3, 2, 1, count_include_pad=False),
                               lambda x: TF.avg_pool3d(x, 3, 2, 1, count_include_pad=False)),
    "avg_pool3d_divisor": (lambda x: F.avg_pool3d(x, 2, 1, 1, divisor_override=3),
                           lambda x: TF.avg_pool3d(x, 2, 1, 1, divisor_override=3)),
    "adaptive_avg_pool3d": (lambda x: F.adaptive_avg_pool3d(x, (2, 4, 3)),
                            lambda x: TF.adaptive_avg_pool3d(x, (2, 4, 3))),
    "adaptive_max_pool3d": (lambda x: F.adaptive_max_pool3d(x, (2, 4, None)),
                            lambda x: TF.adaptive_max_pool3d(x, (2, 4, None))),
    "lp_pool3d": (lambda x: F.lp_pool3d(x, 2, 2), lambda x: TF.lp_pool3d(x, 2, 2)),
}


@pytest.mark.parametrize("name", sorted(POOLS))
def test_pool_parity(name):
    ours, ref = POOLS[name]
    check(ours, [V], torch_fn=ref)
    check(ours, [V[0]], torch_fn=ref, dtypes=(np.float64,))  # unbatched


@pytest.mark.parametrize("name", ["max_pool3d_pad_stride_dilation", "avg_pool3d_pad_exclude", "adaptive_avg_pool3d",
                                  "adaptive_max_pool3d", "lp_pool3d"])
def test_pool_gradcheck(name):
    assert gradcheck(POOLS[name][0], [randn(1, 2, 4, 5, 3, seed=2)])


@pytest.mark.parametrize("name,args", [
    ("max_pool1d_with_indices", (randn(2, 3, 9), 3, 2, 1)),
    ("max_pool2d_with_indices", (randn(2, 3, 6, 5), 2)),
    ("max_pool3d_with_indices", (V, (2, 2, 3), 2, 1)),
    ("adaptive_max_pool1d_with_indices", (randn(2, 3, 9), 4)),
    ("adaptive_max_pool2d_with_indices", (randn(2, 3, 6, 5), (4, 3))),
    ("adaptive_max_pool3d_with_indices", (V, 3)),
])
def test_with_indices_match_torch(name, args):
    y, i = getattr(F, name)(na.tensor(args[0]), *args[1:])
    yt, it = getattr(TF, name)(torch.tensor(args[0]), *args[1:])
    np.testing.assert_array_equal(y.numpy(), yt.numpy())
    np.testing.assert_array_equal(i.numpy(), it.numpy())


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool(nd):
    x = {1: randn(2, 3, 8), 2: randn(2, 3, 6, 4), 3: randn(2, 2, 4, 6, 4)}[nd]
    pool, unpool = f"max_pool{nd}d", f"max_unpool{nd}d"
    _, it = getattr(TF, pool)(torch.tensor(x), 2, return_indices=True)
    pooled = getattr(TF, pool)(torch.tensor(x), 2).numpy()
    check(lambda y: getattr(F, unpool)(y, na.tensor(it.numpy()), 2, output_size=x.shape[2:]), [pooled],
          torch_fn=lambda y: getattr(TF, unpool)(y, it, 2, output_size=x.shape[2:]))
    check(lambda y: getattr(F, unpool)(y, na.tensor(it.numpy()), 2), [pooled],
          torch_fn=lambda y: getattr(TF, unpool)(y, it, 2))
    with pytest.raises(IndexingError, match="indices"):
        getattr(F, unpool)(na.tensor(pooled), na.tensor(it.numpy() + 10_000), 2)


@pytest.mark.parametrize("name,args", [("relu_", ()), ("elu_", (0.5,)), ("celu_", (1.5,)), ("selu_", ()),
                                       ("leaky_relu_", (0.2,)), ("hardtanh_", (-0.5, 0.7)), ("threshold_", (0.1, 2.0)),
                                       ("rrelu_", (0.1, 0.3))])
def test_inplace_activations(name, args):
    x = randn(3, 4, seed=3)
    ours, ref = na.tensor(x.copy()), torch.tensor(x.copy())
    out = getattr(F, name)(ours, *args)
    getattr(TF, name)(ref, *args)
    assert out is ours
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-12)
    with pytest.raises(GradientError, match=name):
        getattr(F, name)(na.tensor(x, requires_grad=True), *args)
    leaf = na.tensor(x.copy(), requires_grad=True)
    with na.no_grad():  # allowed outside the graph, as torch's in-place methods under no_grad
        assert getattr(F, name)(leaf, *args) is leaf
    np.testing.assert_allclose(leaf.detach().numpy(), ref.numpy(), rtol=1e-12)


LAZY = {  # lazy class, its materialised class's torch constructor (with the inferred size filled in), input
    "LazyLinear": (lambda nn: nn.LazyLinear(3), lambda nn: nn.Linear(5, 3), rnd(2, 4, 5)),
    "LazyConv1d": (lambda nn: nn.LazyConv1d(4, 3, padding=1), lambda nn: nn.Conv1d(2, 4, 3, padding=1),
                   rnd(2, 2, 7)),
    "LazyConv2d": (lambda nn: nn.LazyConv2d(4, 3, stride=2, groups=2),
                   lambda nn: nn.Conv2d(2, 4, 3, stride=2, groups=2), rnd(2, 2, 7, 6)),
    "LazyConv3d": (lambda nn: nn.LazyConv3d(4, 2), lambda nn: nn.Conv3d(3, 4, 2), rnd(1, 3, 3, 4, 3)),
    "LazyConvTranspose1d": (lambda nn: nn.LazyConvTranspose1d(4, 3, stride=2),
                            lambda nn: nn.ConvTranspose1d(2, 4, 3, stride=2), rnd(2, 2, 5)),
    "LazyConvTranspose2d": (lambda nn: nn.LazyConvTranspose2d(4, 3), lambda nn: nn.ConvTranspose2d(2, 4, 3),
                            rnd(2, 2, 4, 5)),
    "LazyConvTranspose3d": (lambda nn: nn.LazyConvTranspose3d(3, 2, stride=2),
                            lambda nn: nn.ConvTranspose3d(2, 3, 2, stride=2), rnd(1, 2, 2, 3, 2)),
    "LazyBatchNorm1d": (lambda nn: nn.LazyBatchNorm1d(), lambda nn: nn.BatchNorm1d(4), rnd(3, 4)),
    "LazyBatchNorm2d": (lambda nn: nn.LazyBatchNorm2d(momentum=0.2), lambda nn: nn.BatchNorm2d(4, momentum=0.2),
                        rnd(3, 4, 2, 2)),
    "LazyBatchNorm3d": (lambda nn: nn.LazyBatchNorm3d(), lambda nn: nn.BatchNorm3d(2), rnd(3, 2, 2, 2, 2)),
    # (torch's lazy instance norms default to affine=True, track_running_stats=True)
    "LazyInstanceNorm1d": (lambda nn: nn.LazyInstanceNorm1d(),
                           lambda nn: nn.InstanceNorm1d(3, affine=True, track_running_stats=True), rnd(2, 3, 5)),
    "LazyInstanceNorm2d": (lambda nn: nn.LazyInstanceNorm2d(affine=False, track_running_stats=False),
                           lambda nn: nn.InstanceNorm2d(3), rnd(2, 3, 4, 5)),
    "LazyInstanceNorm3d": (lambda nn: nn.LazyInstanceNorm3d(),
                           lambda nn: nn.InstanceNorm3d(2, affine=True, track_running_stats=True),
                           rnd(2, 2, 3, 4, 3)),
}


@pytest.mark.parametrize("name", sorted(LAZY))
def test_lazy_modules(name):
    make_lazy, make_plain, x = LAZY[name]
    lazy = make_lazy(nn)
    assert lazy.has_uninitialized_params() or name == "LazyInstanceNorm2d"  # (no affine, no stats: nothing)
    lazy(na.tensor(x.astype(np.float32)))  # materialises
    plain_cls = type(make_plain(nn))
    assert type(lazy) is plain_cls and not isinstance(lazy, nn.LazyModuleMixin)
    ref = make_plain(torch.nn)
    assert {k: tuple(v.shape) for k, v in lazy.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    # torch's own lazy module materialises to the same shapes, and with its weights gives the same values
    x32 = torch.tensor(x.astype(np.float32))
    with reference():
        torch_lazy = make_lazy(torch.nn)
        torch_lazy(x32)
    compare({k: list(v.shape) for k, v in lazy.state_dict().items()},
            {k: list(v.shape) for k, v in torch_lazy.state_dict().items()})
    check_layer(lambda: lazy, lambda: torch_lazy, [x], dtypes=(np.float64,))


def test_lazy_linear_init_bound_and_parameters_are_the_same_objects():
    m = nn.LazyLinear(4)
    w = m.weight
    assert isinstance(w, nn.UninitializedParameter) and isinstance(nn.LazyBatchNorm1d().running_mean,
                                                                   nn.UninitializedBuffer)
    m(na.zeros(2, 9))
    assert m.weight is w and isinstance(w, nn.Parameter) and w.shape == (4, 9)
    assert np.abs(w.detach().numpy()).max() <= 1 / 3 and np.abs(w.detach().numpy()).max() > 0.2


def test_pool3d_modules():
    check_layer(lambda: nn.MaxPool3d(2, 1, 1), lambda: torch.nn.MaxPool3d(2, 1, 1), [V])
    check_layer(lambda: nn.AvgPool3d(2), lambda: torch.nn.AvgPool3d(2), [V])
    check_layer(lambda: nn.AdaptiveAvgPool3d(2), lambda: torch.nn.AdaptiveAvgPool3d(2), [V])
    check_layer(lambda: nn.AdaptiveMaxPool3d((1, 2, 3)), lambda: torch.nn.AdaptiveMaxPool3d((1, 2, 3)), [V])
    check_layer(lambda: nn.LPPool3d(3, 2), lambda: torch.nn.LPPool3d(3, 2), [np.abs(V) + 0.1])
    y, i = nn.MaxPool3d(2, return_indices=True)(na.tensor(V))
    back = nn.MaxUnpool3d(2)(y, i)
    yt, it = torch.nn.MaxPool3d(2, return_indices=True)(torch.tensor(V))
    with reference():
        want = torch.nn.MaxUnpool3d(2)(yt, it)
    compare(back, want)


def test_legacy_names():
    with pytest.warns(UserWarning, match="deprecated"):
        c = nn.Container(a=nn.Linear(2, 3))
    assert list(dict(c.named_parameters())) == ["a.weight", "a.bias"]
    check_layer(lambda: nn.NLLLoss2d(), lambda: torch.nn.NLLLoss2d(), [rnd(2, 3, 4, 4), np.zeros((2, 4, 4), np.int64)])


def test_avg_pool3d_ceil_mode_is_a_clear_error():
    with pytest.raises(ConfigError, match="ceil_mode"):
        F.avg_pool3d(na.tensor(V), 2, ceil_mode=True)
