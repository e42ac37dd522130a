"""na.compile: a captured training step replays bit for bit what eager computes.

Every shipped model's training step runs twice from the same weights, batches and random seed:
eagerly, and through ``na.compile(fuse=False)``. Parameters, losses and optimizer state must be
identical (``np.array_equal``), and the compiled step must really have been replayed (``programs ==
1``) -- or, for the models whose step cannot be captured, refused for the stated reason and still equal.
The fused replay (generated kernels, static buffers, one optimizer call) is tested in test_fusion.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import neural_arch as na
import neural_arch.nn.functional as F
from neural_arch import models, nn, optim
from neural_arch.errors import CompileError

V = 50  # vocabulary of the language models


def _lm_loss(model, ids, tgt):
    return F.cross_entropy(model(ids).logits.reshape(-1, V), tgt.reshape(-1))


def _lm_batch(rng, b=2, t=8):
    return na.tensor(rng.integers(0, V, (b, t))), na.tensor(rng.integers(0, V, (b, t)))


def _image_batch(rng, c=1, s=28, classes=10, b=4):
    return na.tensor(rng.standard_normal((b, c, s, s)).astype(np.float32)), na.tensor(rng.integers(0, classes, b))


def _classify_loss(model, x, y):
    out = model(x)
    return F.cross_entropy(getattr(out, "logits", out), y)


def _mlp():
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 5))


def _cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Dropout(0.25), nn.Linear(4 * 14 * 14, 10))


MODELS = {
    "mlp": (_mlp, lambda r: (na.tensor(r.standard_normal((8, 20)).astype(np.float32)),
                             na.tensor(r.integers(0, 5, 8))), _classify_loss),
    "cnn": (_cnn, _image_batch, _classify_loss),
    "gpt2": (lambda: models.GPT2LMHeadModel(models.GPT2Config(vocab_size=V, n_positions=16, n_embd=32, n_layer=2,
                                                              n_head=4)), _lm_batch, _lm_loss),
    "bert": (lambda: models.BertForMaskedLM(models.BertConfig(
        vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
        max_position_embeddings=16)), _lm_batch, _lm_loss),
    "modern": (lambda: models.ModernTransformer(models.ModernConfig(
        vocab_size=V, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2)), _lm_batch, _lm_loss),
    "mixtral": (lambda: models.MixtralForCausalLM(models.MixtralConfig(
        vocab_size=V, hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2)), _lm_batch, _lm_loss),
    "mamba": (lambda: models.MambaForCausalLM(models.MambaConfig(vocab_size=V, hidden_size=12, state_size=3,
                                                                 num_hidden_layers=2)), _lm_batch, _lm_loss),
    "vit": (lambda: models.ViTForImageClassification(models.ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48, image_size=8,
        patch_size=2, num_channels=1, num_labels=3)),
        lambda r: _image_batch(r, s=8, classes=3), _classify_loss),
    "resnet": (lambda: models.resnet_small(num_classes=10, widths=(4, 8, 8)), _image_batch, _classify_loss),
    "efficientnet": (lambda: models.efficientnet_small(num_classes=10, width_mult=0.25, depth_mult=0.25),
                     _image_batch, _classify_loss),
}

def _clip():
    return models.CLIPModel(models.CLIPConfig(
        text_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
                         vocab_size=V, max_position_embeddings=12, eos_token_id=V - 1, bos_token_id=0,
                         pad_token_id=1),
        vision_config=dict(hidden_size=24, num_hidden_layers=2, num_attention_heads=2, intermediate_size=40,
                           image_size=16, patch_size=4, num_channels=3),
        projection_dim=20))


def _clip_batch(rng, b=3):
    ids = rng.integers(3, V - 1, (b, 10))
    ids[:, -1] = V - 1  # the end token, whose state is pooled
    return na.tensor(ids), na.tensor(rng.standard_normal((b, 3, 16, 16)).astype(np.float32))


def _idefics():
    return models.IdeficsForVisionText2Text(models.IdeficsConfig(
        vocab_size=V, additional_vocab_size=2, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
        num_attention_heads=2, use_resampler=True,
        vision_config=dict(embed_dim=12, image_size=8, patch_size=4, intermediate_size=20, num_hidden_layers=1,
                           num_attention_heads=2),
        perceiver_config=dict(resampler_n_latents=3, resampler_depth=1, resampler_n_heads=2, resampler_head_dim=4)))


def _idefics_batch(rng, b=2, t=6):
    ids, tgt = _lm_batch(rng, b, t)
    return ids, na.tensor(rng.standard_normal((b, 1, 3, 8, 8)).astype(np.float32)), tgt


MODELS["clip"] = (_clip, _clip_batch, lambda m, ids, px: m(input_ids=ids, pixel_values=px, return_loss=True).loss)
MODELS["idefics"] = (_idefics, _idefics_batch, lambda m, ids, px, tgt: F.cross_entropy(
    m(ids, pixel_values=px).logits[..., :V].reshape(-1, V), tgt.reshape(-1)))

# models whose step is refused, and the reason's first words (they still run, eagerly): Mixtral routes
# each token to its experts with index arrays computed from the router's values (data-dependent shapes)
REFUSED: dict[str, str] = {"mixtral": "Gather's parameter 'index' is computed in Python from data"}


def _run(name, compiled, steps=5, fuse=False):
    build, make_batch, loss_fn = MODELS[name]
    na.manual_seed(0)
    model = build().train()
    opt = optim.AdamW(model.parameters(), lr=1e-2)

    def step(*batch):
        opt.zero_grad()
        loss = loss_fn(model, *batch)
        loss.backward()
        opt.step()
        return loss

    fn = na.compile(step, fuse=fuse) if compiled else step
    rng = np.random.default_rng(1)
    na.manual_seed(7)  # dropout draws from here on: the same stream in both runs
    losses = [fn(*make_batch(rng)).detach().numpy().copy() for _ in range(steps)]
    state = [p.data.copy() for p in model.parameters()] + [b.data.copy() for b in model.buffers()]
    return losses, state, fn


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_compiled_training_step_equals_eager_bit_for_bit(name):
    eager_losses, eager_state, _ = _run(name, compiled=False)
    losses, state, fn = _run(name, compiled=True)
    if name in REFUSED:
        assert fn.programs == 0 and fn.refusals and fn.refusals[0].startswith(REFUSED[name]), fn.refusals
    else:
        assert fn.refusals == [] and fn.programs == 1  # steps 3-5 were replays
    for a, b in zip(eager_losses, losses):
        assert np.array_equal(a, b)
    assert len(state) == len(eager_state)
    for a, b in zip(eager_state, state):
        assert np.array_equal(a, b)


# -- guards, refusals, modules ----------------------------------------------------------------------------
def _mlp_step(model, opt, extra=None):
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        if extra is not None:
            loss = extra(loss)
        loss.backward()
        opt.step()
        return loss
    return step


_COUNTER = itertools.count()  # a Python value that changes every call


def _xy(rng, b=8):
    return na.tensor(rng.standard_normal((b, 20)).astype(np.float32)), na.tensor(rng.integers(0, 5, b))


def test_a_new_shape_or_mode_is_captured_anew_and_each_replays_its_own_program():
    na.manual_seed(0)
    model = _mlp()
    fn = na.compile(_mlp_step(model, optim.SGD(model.parameters(), lr=0.1)))
    rng = np.random.default_rng(0)
    for b in (8, 8, 8, 4, 4, 4):
        fn(*_xy(rng, b))
    assert fn.programs == 2
    model.eval()  # dropout off: another program (the guard reads every module's training flag)
    for _ in range(3):
        fn(*_xy(rng))
    assert fn.programs == 3 and fn.refusals == []


def test_a_scheduler_step_inside_the_step_is_replayed_in_order():
    lrs = []
    for compiled in (False, True):
        na.manual_seed(0)
        model = _mlp()
        opt = optim.SGD(model.parameters(), lr=0.1)
        sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        inner = _mlp_step(model, opt)

        def step(x, y, inner=inner, sched=sched):
            loss = inner(x, y)
            sched.step()
            return loss
        fn = na.compile(step) if compiled else step
        rng = np.random.default_rng(0)
        for _ in range(6):
            fn(*_xy(rng))
        lrs.append(sched.get_last_lr())
        if compiled:
            assert fn.programs == 1
    assert lrs[0] == lrs[1] == [0.1 * 0.5**3]


@pytest.mark.parametrize("body, reason", [
    (lambda loss: loss * 2 if loss.item() > 0 else loss, "item() reads a tensor's values"),
    (lambda loss: loss + na.rand(()), "random numbers were drawn outside an op"),
    (lambda loss: loss * na.tensor(np.float32(next(_COUNTER) % 7)), "input 1 is computed in Python from data"),
])
def test_what_a_replay_cannot_repeat_stays_eager_and_says_why(body, reason):
    global _COUNTER
    results = []
    for compiled in (False, True):
        _COUNTER = itertools.count()
        na.manual_seed(0)
        model = _mlp()
        step = _mlp_step(model, optim.SGD(model.parameters(), lr=0.1), extra=body)
        fn = na.compile(step) if compiled else step
        rng = np.random.default_rng(0)
        na.manual_seed(3)
        for _ in range(4):
            fn(*_xy(rng))
        results.append([p.data.copy() for p in model.parameters()])
    assert fn.programs == 0 and len(fn.refusals) == 1 and reason in fn.refusals[0], fn.refusals
    assert all(np.array_equal(a, b) for a, b in zip(*results))


def test_fullgraph_raises_a_compile_error_naming_the_reason():
    na.manual_seed(0)
    model = _mlp()
    step = _mlp_step(model, optim.SGD(model.parameters(), lr=0.1), extra=lambda loss: loss * float(loss.item()))
    fn = na.compile(step, fullgraph=True)
    with pytest.raises(CompileError, match=r"fullgraph=True.*item\(\) reads a tensor's values"):
        fn(*_xy(np.random.default_rng(0)))


def test_a_forward_that_returns_a_tensor_needing_grad_is_refused_and_still_differentiable():
    na.manual_seed(0)
    model = _mlp().eval()
    fwd = na.compile(model)
    x, _ = _xy(np.random.default_rng(0))
    for _ in range(3):
        out = fwd(x)
        out.sum().backward()  # eager: the graph is there
    assert fwd.programs == 0 and "needs grad" in fwd.refusals[0]
    assert model[0].weight.grad is not None


def test_a_compiled_module_replays_inference_and_passes_attributes_through():
    na.manual_seed(0)
    model = models.GPT2LMHeadModel(models.GPT2Config(vocab_size=V, n_positions=16, n_embd=32, n_layer=2,
                                                     n_head=4)).eval()
    compiled = na.compile(model)
    assert compiled.config is model.config and list(compiled.parameters()) == list(model.parameters())
    rng = np.random.default_rng(0)
    with na.no_grad():
        for _ in range(4):
            ids = na.tensor(rng.integers(0, V, (2, 8)))
            assert np.array_equal(compiled(ids).logits.numpy(), model(ids).logits.numpy())
    assert compiled.programs == 1 and compiled.refusals == []


def test_replayed_values_do_not_alias_earlier_results():
    """Each replay returns new arrays: a loss kept from step 1 is not overwritten by step 5."""
    na.manual_seed(0)
    model = _mlp()
    fn = na.compile(_mlp_step(model, optim.SGD(model.parameters(), lr=0.1)))
    rng = np.random.default_rng(0)
    kept = [fn(*_xy(rng)) for _ in range(5)]
    values = [float(k.item()) for k in kept]
    assert len(set(values)) == 5 and values == [float(k.item()) for k in kept]


# -- the Trainer and the command line ---------------------------------------------------------------------
@pytest.mark.parametrize("precision", ["32", "bf16-mixed", "16-mixed"])
def test_trainer_compile_gives_the_eager_run_bit_for_bit(precision):
    from neural_arch.data import DataLoader, TensorDataset
    from neural_arch.train import Classification, Trainer

    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 20)).astype(np.float32)
    y = rng.integers(0, 5, 64)
    runs = []
    for compiled in (False, True):
        na.manual_seed(0)
        model = _mlp()
        loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=na.Generator(0))
        t = Trainer(model, optim.AdamW(model.parameters(), lr=1e-2), loader, task=Classification(),
                    max_steps=12, grad_clip=1.0, compile=compiled, precision=precision)
        t.fit()
        runs.append([p.data.copy() for p in model.parameters()])
        if compiled:
            assert t.compiled.programs == 1 and t.compiled.refusals == []
    assert all(np.array_equal(a, b) for a, b in zip(*runs))


def test_train_compile_true_in_a_config_runs_compiled(tmp_path):
    import json

    import yaml
    from click.testing import CliRunner

    from neural_arch.cli.main import main

    cfg = {"name": "tiny", "seed": 3, "run_dir": str(tmp_path / "run"),
           "model": {"name": "char_mlp", "kwargs": {"context": 4, "n_embd": 8, "hidden": 32, "dropout": 0.1}},
           "data": {"name": "tinyshakespeare", "block_size": 16, "val_windows": 64, "prefetch": 1},
           "optimizer": {"name": "adamw", "lr": 0.01}, "scheduler": {"name": "none"},
           "train": {"batch_size": 8, "max_steps": 6, "eval_every": 3, "checkpoint_every": 3, "log_every": 2,
                     "compile": True},
           "logging": {"progress": False, "plot": False, "sample_chars": 20}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(main, ["train", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in records) and "done: 6 steps" in result.output
    assert "compile: 1 batch shape(s) replayed" in result.output and "eager because" not in result.output
