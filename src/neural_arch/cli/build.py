"""From a ``RunConfig`` to the objects of a run: data loaders, model, optimizer, scheduler, task.

Everything random is seeded from ``config.seed``: the default generator
(initialisation, dropout) by ``na.manual_seed`` and the training loader's
shuffling by its own ``na.Generator``, so a config names one run exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import neural_arch as na
from neural_arch import optim
from neural_arch.config.schema import RunConfig
from neural_arch.data import DataLoader, FashionMNIST, MNIST, Subset, TensorDataset, TinyShakespeare
from neural_arch.errors import CheckpointError, ConfigError
from neural_arch.io.serialization import TREE_KEY, read_metadata
from neural_arch.models.small import LANGUAGE_MODELS, MASKED_LANGUAGE_MODELS, build_model
from neural_arch.train.tasks import Classification, LanguageModeling, MaskedLanguageModeling


@dataclass
class Run:
    config: RunConfig
    model: object
    optimizer: object
    scheduler: object
    train_loader: DataLoader
    val_loader: DataLoader
    task: object
    max_steps: int
    tokenizer: object = None
    metadata: dict = field(default_factory=dict)


def build_data(cfg: RunConfig):
    """(train dataset, val dataset, tokenizer or None). For images the val set is the official test set."""
    d = cfg.data
    if d.name == "tinyshakespeare":
        train, val = TinyShakespeare("train", d.block_size), TinyShakespeare("val", d.block_size)
        # score a fixed, evenly spread set of windows: the same every evaluation, no randomness used
        picks = np.linspace(0, len(val) - 1, min(d.val_windows, len(val))).astype(np.int64)
        return train, Subset(val, picks.tolist()), train.tokenizer
    cls = FashionMNIST if d.name == "fashion_mnist" else MNIST
    train_raw, test_raw = cls(d.root, train=True), cls(d.root, train=False)
    x_train = train_raw.data.astype(np.float32) / 255.0
    x_test = test_raw.data.astype(np.float32) / 255.0
    if d.normalize:  # statistics of the training set only
        mean, std = float(x_train.mean()), float(x_train.std())
        x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    # (N, 1, 28, 28) float32 in memory: whole-batch gathers, no per-sample Python in the loop
    return (TensorDataset(x_train[:, None], train_raw.targets), TensorDataset(x_test[:, None], test_raw.targets),
            None)


def build_optimizer(cfg: RunConfig, model):
    o = cfg.optimizer
    classes = {"adamw": optim.AdamW, "adam": optim.Adam, "sgd": optim.SGD, "lion": optim.Lion,
               "rmsprop": optim.RMSprop, "adagrad": optim.Adagrad}
    # weight decay on matrices and kernels only, not on biases, norms' gains (as nanoGPT, timm, ...)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    kwargs: dict = {"lr": o.lr}
    if o.betas is not None:
        if o.name not in ("adamw", "adam", "lion"):
            raise ConfigError(f"optimizer.betas: {o.name} takes no betas; remove the field")
        kwargs["betas"] = tuple(o.betas)
    if o.name == "sgd":
        kwargs.update(momentum=o.momentum, nesterov=o.nesterov)
    elif o.name == "rmsprop":
        kwargs.update(momentum=o.momentum)
    return classes[o.name]([g for g in groups if g["params"]], **kwargs)


def build_scheduler(cfg: RunConfig, optimizer, max_steps: int):
    s = cfg.scheduler
    sched = optim.lr_scheduler
    if s.name == "none":
        return None
    if s.name == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=max_steps, eta_min=s.min_lr)
    if s.name == "warmup_cosine":
        return sched.WarmupCosineLR(optimizer, warmup_steps=min(s.warmup_steps, max_steps), total_steps=max_steps,
                                    eta_min=s.min_lr)
    if s.name == "step":
        return sched.StepLR(optimizer, step_size=s.step_size, gamma=s.gamma)
    return sched.OneCycleLR(optimizer, max_lr=cfg.optimizer.lr, total_steps=max_steps)


def build_run(cfg: RunConfig) -> Run:
    na.manual_seed(cfg.seed)
    train_set, val_set, tokenizer = build_data(cfg)
    is_lm = cfg.model.name in LANGUAGE_MODELS
    if is_lm != (tokenizer is not None):
        raise ConfigError(f"model.name: {cfg.model.name!r} does not fit data.name {cfg.data.name!r}; use "
                          + ("mlp or cnn for images" if tokenizer is None else "char_transformer or char_mlp for text"))
    kwargs = dict(cfg.model.kwargs)
    if is_lm:
        kwargs.update(vocab_size=tokenizer.vocab_size, block_size=cfg.data.block_size)
    model = build_model(cfg.model.name, **kwargs)
    batch = cfg.train.batch_size
    train_loader = DataLoader(train_set, batch_size=batch, shuffle=True, drop_last=True,
                              generator=na.Generator(cfg.seed), prefetch=cfg.data.prefetch)
    val_loader = DataLoader(val_set, batch_size=max(batch, 256), prefetch=cfg.data.prefetch)
    if len(train_loader) == 0:
        raise ConfigError(f"train.batch_size: {batch} is larger than the training set ({len(train_set)} samples)")
    max_steps = cfg.train.max_steps or cfg.train.epochs * len(train_loader)
    optimizer = build_optimizer(cfg, model)
    scheduler = build_scheduler(cfg, optimizer, max_steps)
    metadata = {"config": cfg.model_dump(mode="json")}
    if tokenizer is not None:
        metadata["tokenizer"] = tokenizer.state_dict()
    if cfg.model.name in MASKED_LANGUAGE_MODELS:  # masks drawn from their own seeded stream
        task = MaskedLanguageModeling(model.mask_token_id, tokenizer.vocab_size, generator=na.Generator(cfg.seed + 1))
    else:
        task = LanguageModeling() if is_lm else Classification()
    return Run(cfg, model, optimizer, scheduler, train_loader, val_loader, task, max_steps, tokenizer, metadata)


def checkpoint_config(path) -> dict:
    """The config stored in a training checkpoint's metadata (read from the header only)."""
    try:
        tree = json.loads(read_metadata(path).get(TREE_KEY, "{}"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read the config stored in '{path}': {e}") from None
    config = (tree.get("metadata") or {}).get("config") if isinstance(tree, dict) else None
    if config is None:
        raise CheckpointError(f"'{path}' holds no run config (was it written by `neural-arch train`?); "
                              "pass the config file as well")
    return config


def default_run_dir(cfg: RunConfig) -> Path:
    import time

    return Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
