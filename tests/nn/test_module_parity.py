"""torch.nn names with no comparison elsewhere, against torch's: the containers and parameter kinds a user
builds models from (a user's Module subclass, ModuleList/ModuleDict/ParameterList/ParameterDict, Parameter,
Buffer, Container, the uninitialised parameters of lazy modules, the recurrent base classes), and layers
(dropout in eval mode, Hardsigmoid, TransformerDecoder, FractionalMaxPool with fixed samples, MaxUnpool,
LinearCrossEntropyLoss with its options)."""

import warnings

import numpy as np
import pytest
import torch
from parity import compare, reference
from test_layers import check_layer, rnd

import neural_arch as na
from neural_arch import nn


def _blocks(lib, tensor):
    """A user's model written against ``lib`` (torch.nn or ours) with every container and parameter kind."""

    class Blocks(lib.Module):
        def __init__(self):
            super().__init__()
            self.layers = lib.ModuleList([lib.Linear(4, 4), lib.Linear(4, 3)])
            self.heads = lib.ModuleDict({"tanh": lib.Tanh(), "relu": lib.ReLU()})
            self.gains = lib.ParameterList([lib.Parameter(tensor(np.full(4, 0.5))), lib.Parameter(tensor(np.ones(3)))])
            self.shifts = lib.ParameterDict({"a": lib.Parameter(tensor(np.linspace(-1, 1, 3)))})
            self.scale = lib.Buffer(tensor(np.array([2.0])))

        def forward(self, x):
            x = self.heads["tanh"](self.layers[0](x) * self.gains[0])
            return self.heads["relu"](self.layers[1](x) * self.gains[1] + self.shifts["a"]) * self.scale

    return Blocks()


def test_a_users_module_of_every_container_gives_torchs_values():
    with reference():  # the containers are claimed as built; the user's Module when it runs
        ref = _blocks(torch.nn, torch.tensor)
    ours = _blocks(nn, na.tensor)
    compare(list(ours.state_dict()), list(ref.state_dict()), what="state_dict keys")
    check_layer(lambda: _blocks(nn, na.tensor), lambda: _blocks(torch.nn, torch.tensor), [rnd(5, 4)])


def test_a_deprecated_container_holds_modules_as_torchs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both say Container is deprecated
        ours = nn.Container(a=nn.Linear(2, 3), b=nn.ReLU())
        with reference():
            ref = torch.nn.Container(a=torch.nn.Linear(2, 3), b=torch.nn.ReLU())
    compare({k: list(v.shape) for k, v in ours.state_dict().items()},
            {k: list(v.shape) for k, v in ref.state_dict().items()})


def test_uninitialised_parameters_materialise_as_torchs():
    ours = [nn.UninitializedParameter(), nn.UninitializedBuffer()]
    with reference():
        ref = [torch.nn.UninitializedParameter(), torch.nn.UninitializedBuffer()]
    for p in ours + ref:
        p.materialize((2, 3))
    compare([[list(p.shape), p.requires_grad, isinstance(p, nn.Parameter)] for p in ours],
            [[list(p.shape), p.requires_grad, isinstance(p, torch.nn.Parameter)] for p in ref])


@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN_TANH"])
def test_recurrent_base_classes_lay_out_torchs_weights(mode):
    ours = [nn.RNNBase(mode, 3, 4, num_layers=2, bidirectional=True), nn.RNNCellBase(3, 4, True, 4)]
    with reference():
        ref = [torch.nn.RNNBase(mode, 3, 4, num_layers=2, bidirectional=True), torch.nn.RNNCellBase(3, 4, True, 4)]
    for o, r in zip(ours, ref):
        compare({k: list(v.shape) for k, v in o.state_dict().items()},
                {k: list(v.shape) for k, v in r.state_dict().items()})


LAYERS = {  # name: (make(lib), inputs, check_layer's options)
    "Dropout (eval)": (lambda nn: nn.Dropout(0.4), [rnd(3, 5)], dict(train=False)),
    "Dropout2d (eval)": (lambda nn: nn.Dropout2d(0.4), [rnd(2, 3, 4, 4)], dict(train=False)),
    "Dropout p=0": (lambda nn: nn.Dropout(0.0), [rnd(3, 5)], {}),
    # torch's CPU backward multiplies by 1/6 rounded to float32, in float64 too (3e-8 relative); ours is exact
    "Hardsigmoid": (lambda nn: nn.Hardsigmoid(), [rnd(3, 5, scale=4.0)], dict(rtol=1e-7)),
    "TransformerDecoder": (lambda nn: nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0,
                                                                                       batch_first=True), 2),
                           [rnd(2, 3, 8), rnd(2, 5, 8, seed=2)], {}),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_parity(name):
    make, inputs, options = LAYERS[name]
    check_layer(lambda: make(nn), lambda: make(torch.nn), inputs, **options)


@pytest.mark.parametrize("nd,kernel,out", [(2, 2, (4, 3)), (3, (2, 3, 2), (5, 4, 3))])
def test_fractional_max_pool_modules_with_fixed_samples(nd, kernel, out):
    x = rnd(2, 3, 9, 8) if nd == 2 else rnd(2, 3, 9, 8, 7)
    samples = np.random.default_rng(13).random((2, 3, nd))
    name = f"FractionalMaxPool{nd}d"
    check_layer(lambda: getattr(nn, name)(kernel, out, _random_samples=na.tensor(samples)),
                lambda: getattr(torch.nn, name)(kernel, out, _random_samples=torch.tensor(samples)), [x],
                dtypes=(np.float64,))


@pytest.mark.parametrize("nd", [1, 2])
def test_max_unpool_modules(nd):
    x = rnd(2, 3, 8) if nd == 1 else rnd(2, 3, 6, 4)
    y, i = getattr(nn, f"MaxPool{nd}d")(2, return_indices=True)(na.tensor(x))
    yt, it = getattr(torch.nn, f"MaxPool{nd}d")(2, return_indices=True)(torch.tensor(x))
    ours = getattr(nn, f"MaxUnpool{nd}d")(2)(y, i)
    with reference():
        ref = getattr(torch.nn, f"MaxUnpool{nd}d")(2)(yt, it)
    compare(ours, ref)


def test_linear_cross_entropy_loss_with_options():
    target = np.array([0, 3, 1, 4])
    check_layer(lambda: nn.LinearCrossEntropyLoss(6, 5, options=nn.LinearCrossEntropyOptions(batch_chunk_size=2)),
                lambda: torch.nn.LinearCrossEntropyLoss(
                    6, 5, options=torch.nn.LinearCrossEntropyOptions(batch_chunk_size=2)),
                [rnd(4, 6), target], call=lambda m, x, t: m(x, t))
