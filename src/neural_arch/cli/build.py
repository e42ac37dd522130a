"""From a ``RunConfig`` to the objects of a run: data loaders, model, optimizer, scheduler, task.

Everything random is seeded from ``config.seed``: the default generator
(initialisation, dropout) by ``manual_seed``, the training loader's shuffling
and the validation split by their own generators, so a config names one run exactly.

Data: Tiny Shakespeare (train / val splits of the text), Fashion-MNIST / MNIST
(a seeded ``val_fraction`` of the training images held out for validation; the
official test set is kept for ``neural-arch evaluate --split test``), or your
own ``data.class_path`` (a Dataset, split the same way, or a data module with
``train_dataloader()`` / ``val_dataloader()`` / optionally ``test_dataloader()``).
"""

from __future__ import annotations

import inspect
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neural_arch import optim
from neural_arch.backend import Generator, manual_seed
from neural_arch.config.classes import check_args, import_class
from neural_arch.config.schema import RunConfig
from neural_arch.data import MNIST, DataLoader, FashionMNIST, Subset, TensorDataset, TinyShakespeare
from neural_arch.errors import CheckpointError, ConfigError
from neural_arch.io.serialization import TREE_KEY, read_metadata
from neural_arch.models.small import LANGUAGE_MODELS, MASKED_LANGUAGE_MODELS, MODELS, build_model
from neural_arch.nn import Module
from neural_arch.train.tasks import Classification, LanguageModeling, MaskedLanguageModeling


@dataclass
class Data:
    """The loaders of a run and what the model needs to know about the data."""

    train_loader: object
    val_loader: object
    test_loader: object = None
    tokenizer: object = None
    steps_per_epoch: int | None = None  # text: an epoch is defined in steps (see build_text)
    description: str = ""


@dataclass
class Run:
    config: RunConfig
    model: object
    optimizer: object
    scheduler: object
    train_loader: object
    val_loader: object
    task: object
    max_steps: int
    tokenizer: object = None
    metadata: dict = field(default_factory=dict)
    test_loader: object = None
    steps_per_epoch: int | None = None
    data_description: str = ""


# -- data ------------------------------------------------------------------------------------------
def build_data(cfg: RunConfig) -> Data:
    d = cfg.data
    if d.class_path is not None:
        return build_own_data(cfg)
    if d.name == "tinyshakespeare":
        return build_text(cfg)
    return build_images(cfg)


def _loaders(cfg: RunConfig, train_set, val_set) -> tuple[DataLoader, DataLoader]:
    batch = cfg.train.batch_size
    if len(train_set) < batch:
        raise ConfigError(f"train.batch_size: {batch} is larger than the training set ({len(train_set)} samples)")
    train = DataLoader(train_set, batch_size=batch, shuffle=True, drop_last=True, generator=Generator(cfg.seed),
                       prefetch=cfg.data.prefetch)
    val = DataLoader(val_set, batch_size=max(batch, 256), prefetch=cfg.data.prefetch) if val_set is not None else None
    return train, val


def build_text(cfg: RunConfig) -> Data:
    """Tiny Shakespeare windows. One epoch: as many windows as the text holds block_size-long pieces.

    The training set is every offset of the text (len - block_size windows), far more than an epoch
    should be; an epoch is therefore defined as ``ceil(characters / (block_size * batch_size))`` steps,
    so that each character is seen about once per epoch.
    """
    d = cfg.data
    train, val = TinyShakespeare("train", d.block_size), TinyShakespeare("val", d.block_size)
    # score a fixed, evenly spread set of windows: the same every evaluation, no randomness used
    picks = np.linspace(0, len(val) - 1, min(d.val_windows, len(val))).astype(np.int64)
    train_loader, val_loader = _loaders(cfg, train, Subset(val, picks.tolist()))
    characters = len(train) + d.block_size
    steps = math.ceil(characters / (d.block_size * cfg.train.batch_size))
    return Data(train_loader, val_loader, tokenizer=train.tokenizer, steps_per_epoch=steps,
                description=f"one epoch = {steps:,} steps of {cfg.train.batch_size} windows of {d.block_size} "
                            f"characters (each of the {characters:,} training characters seen about once)")


def _check_root(cfg: RunConfig, cls) -> None:
    root = cfg.data.root
    if root is None:
        return
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ConfigError(f"data.root: '{root}' is not a directory; give the directory that holds the "
                          f"{cfg.data.name} IDX files, or remove data.root to use the usual places")
    names = [n for files in cls.files.values() for n in files]
    missing = [n for n in names if not ((path / n).is_file() or (path / f"{n}.gz").is_file())]
    if missing:
        raise ConfigError(f"data.root: '{root}' lacks {', '.join(missing)} (.gz or not); put the {cfg.data.name} "
                          "IDX files there, or remove data.root to use the usual places")


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices: a seeded ``val_fraction`` of ``range(n)`` held out, both sorted."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = round(val_fraction * n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def build_images(cfg: RunConfig) -> Data:
    d = cfg.data
    cls = FashionMNIST if d.name == "fashion_mnist" else MNIST
    _check_root(cfg, cls)
    train_raw, test_raw = cls(d.root, train=True), cls(d.root, train=False)
    train_idx, val_idx = split_indices(len(train_raw), d.val_fraction, cfg.seed)
    x_all = train_raw.data.astype(np.float32) / 255.0
    x_test = test_raw.data.astype(np.float32) / 255.0
    x_train, x_val = x_all[train_idx], x_all[val_idx]
    if d.normalize:  # statistics of the training part only
        mean, std = float(x_train.mean()), float(x_train.std())
        x_train, x_val, x_test = (x_train - mean) / std, (x_val - mean) / std, (x_test - mean) / std
    # (N, 1, 28, 28) float32 in memory: whole-batch gathers, no per-sample Python in the loop
    train_set = TensorDataset(x_train[:, None], train_raw.targets[train_idx])
    val_set = TensorDataset(x_val[:, None], train_raw.targets[val_idx]) if len(val_idx) else None
    test_set = TensorDataset(x_test[:, None], test_raw.targets)
    train_loader, val_loader = _loaders(cfg, train_set, val_set)
    test_loader = DataLoader(test_set, batch_size=max(cfg.train.batch_size, 256))
    return Data(train_loader, val_loader, test_loader,
                description=f"{len(train_idx):,} training images, {len(val_idx):,} held out for validation "
                            f"(seed {cfg.seed}), the {len(x_test):,} test images kept for evaluate")


def build_own_data(cfg: RunConfig) -> Data:
    d = cfg.data
    cls = import_class(d.class_path, "data")
    args = check_args(cls, d.init_args, "data.init_args")
    try:
        data = cls(**args)
    except Exception as e:  # noqa: BLE001 - the user's constructor failed: one line naming the field
        raise ConfigError(f"data: {d.class_path}(**init_args) raised {type(e).__name__}: {e}") from None
    if callable(getattr(data, "train_dataloader", None)):
        val = data.val_dataloader() if callable(getattr(data, "val_dataloader", None)) else None
        test = data.test_dataloader() if callable(getattr(data, "test_dataloader", None)) else None
        return Data(data.train_dataloader(), val, test, description=f"data module {d.class_path}")
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        raise ConfigError(f"data.class_path: {d.class_path} is neither a Dataset (__len__, __getitem__) nor a "
                          "data module (train_dataloader(), val_dataloader())")
    train_idx, val_idx = split_indices(len(data), d.val_fraction, cfg.seed)
    val_set = Subset(data, val_idx.tolist()) if len(val_idx) else None
    train_loader, val_loader = _loaders(cfg, Subset(data, train_idx.tolist()), val_set)
    return Data(train_loader, val_loader, description=f"{d.class_path}: {len(train_idx):,} training samples, "
                                                      f"{len(val_idx):,} held out for validation (seed {cfg.seed})")


# -- model, optimizer, scheduler, task ---------------------------------------------------------------
def build_model_from_config(cfg: RunConfig, tokenizer) -> Module:
    m = cfg.model
    text = {"vocab_size": tokenizer.vocab_size, "block_size": cfg.data.block_size} if tokenizer is not None else {}
    if m.class_path is None:
        is_lm = m.name in LANGUAGE_MODELS
        if is_lm != (tokenizer is not None) and cfg.data.class_path is None:
            use = "mlp or cnn for images" if tokenizer is None else "char_transformer or char_mlp for text"
            raise ConfigError(f"model.name: {m.name!r} does not fit data.name {cfg.data.name!r}; use " + use)
        kwargs = check_args(MODELS[m.name], m.kwargs, "model.kwargs", supplied=text if is_lm else (), name=m.name)
        return build_model(m.name, **kwargs, **(text if is_lm else {}))
    cls = import_class(m.class_path, "model")
    takes = _parameters(cls)
    supplied = {k: v for k, v in text.items() if k in takes and k not in m.init_args}
    args = check_args(cls, m.init_args, "model.init_args", supplied=supplied)
    try:
        model = cls(**args, **supplied)
    except Exception as e:  # noqa: BLE001 - the user's constructor failed: one line naming the field
        raise ConfigError(f"model: {m.class_path}(**init_args) raised {type(e).__name__}: {e}") from None
    if not isinstance(model, Module):
        raise ConfigError(f"model.class_path: {m.class_path} made a {type(model).__name__}, not a neural_arch "
                          "nn.Module")
    return model


def enable_gradient_checkpointing(model, cfg: RunConfig) -> None:
    """``train.gradient_checkpointing: true``: switch it on in the model (or the model it wraps)."""
    for module in model.modules():
        if hasattr(module, "gradient_checkpointing_enable"):
            module.gradient_checkpointing_enable()
            return
    name = cfg.model.name or cfg.model.class_path
    raise ConfigError(f"train.gradient_checkpointing: model {name!r} has no gradient_checkpointing_enable(); "
                      "gpt2, modern, bert and roberta have it (and models.vit's ViT models), or set it to false")


def _parameters(cls) -> set[str]:
    try:
        return set(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return set()


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


def build_task(cfg: RunConfig, model, tokenizer):
    kind = cfg.train.task
    if kind == "auto":
        if cfg.model.name in MASKED_LANGUAGE_MODELS:
            kind = "masked_language_modeling"
        else:
            kind = "language_modeling" if tokenizer is not None else "classification"
    if kind == "masked_language_modeling":
        if getattr(model, "mask_token_id", None) is None or tokenizer is None:
            raise ConfigError("train.task: masked_language_modeling needs text data and a model with mask_token_id")
        # masks drawn from their own seeded stream
        return MaskedLanguageModeling(model.mask_token_id, tokenizer.vocab_size, generator=Generator(cfg.seed + 1))
    return LanguageModeling() if kind == "language_modeling" else Classification()


def build_run(cfg: RunConfig) -> Run:
    manual_seed(cfg.seed)
    data = build_data(cfg)
    model = build_model_from_config(cfg, data.tokenizer)
    if cfg.train.gradient_checkpointing:
        enable_gradient_checkpointing(model, cfg)
    per_epoch = data.steps_per_epoch or _steps_per_pass(data.train_loader, cfg.train.accumulate_grad_batches)
    if cfg.train.max_steps is None and per_epoch is None:
        raise ConfigError("train.epochs: the training loader has no length; give train.max_steps")
    max_steps = cfg.train.max_steps or cfg.train.epochs * per_epoch
    optimizer = build_optimizer(cfg, model)
    scheduler = build_scheduler(cfg, optimizer, max_steps)
    metadata = {"config": cfg.model_dump(mode="json")}
    if data.tokenizer is not None:
        metadata["tokenizer"] = data.tokenizer.state_dict()
    task = build_task(cfg, model, data.tokenizer)
    return Run(cfg, model, optimizer, scheduler, data.train_loader, data.val_loader, task, max_steps, data.tokenizer,
               metadata, data.test_loader, data.steps_per_epoch, data.description)


def _steps_per_pass(loader, accumulate: int) -> int | None:
    return -(-len(loader) // accumulate) if hasattr(loader, "__len__") else None


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
    return Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
