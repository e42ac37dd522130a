"""Read a run config from YAML, apply ``--set key.sub=value`` overrides, report errors by dotted path.

    cfg = load_config("configs/fashion_mlp.yaml", ["optimizer.lr=3e-4", "train.epochs=2"])
    cfg = load_config(["base.yaml", "small.yaml"], ["seed=1"])  # later files override earlier ones, key by key

An invalid field raises ``ConfigError`` with one line per problem, e.g.::

    optimizer.name: 'adamx' is not one of adamw, adam, sgd, lion, rmsprop, adagrad
    train.batch_size: must be greater than 0 (got -1)
    optimiser: unknown field; the fields here are name, seed, run_dir, model, data, ...
"""

from __future__ import annotations

import os
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from neural_arch.config.schema import RunConfig
from neural_arch.errors import ConfigError


def load_config(path=None, overrides=(), base: dict | None = None) -> RunConfig:
    """The run config in ``path`` with ``overrides`` (``key.sub=value``) applied.

    ``path``: a YAML file, a list of them (merged in order: a later file's keys replace an earlier
    one's, section by section), or None (the default job, or ``base`` if given).
    """
    paths = [] if path is None else [path] if isinstance(path, (str, os.PathLike)) else list(path)
    source = " + ".join(map(str, paths)) or "the default config"  # named in error messages
    raw = dict(base or {})
    for p in paths:
        raw = merge(raw, read_yaml(p))
    for item in overrides:
        apply_override(raw, item)
    return validate(raw, source)


def merge(base: dict, update: dict) -> dict:
    """``update`` over ``base``: nested mappings merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in update.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_yaml(path: str | os.PathLike) -> dict:
    """Read one YAML config file into a dict; a missing file or bad YAML raises ``ConfigError`` naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"'{path}' is a directory, not a YAML config file") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file '{path}' is not valid YAML: {e}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping (key: value lines), not a {type(raw).__name__}")
    return raw


def validate(raw: dict, source: str = "config") -> RunConfig:
    """Validate a raw config dict into a ``RunConfig``; every bad field is reported with its path (``ConfigError``)."""
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as e:
        problems = "\n  ".join(describe(err) for err in e.errors())
        raise ConfigError(f"{source} is not a valid run config:\n  {problems}") from None


def apply_override(raw: dict, item: str) -> None:
    """Apply one ``key.sub=value`` to the raw config dict; the value is parsed as a YAML scalar."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected key.sub=value, e.g. --set optimizer.lr=3e-4")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({e})") from None
    if isinstance(value, str):
        value = _number(value)
    node = raw
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {item!r}: '{'.'.join(parts[:i + 1])}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def _number(text: str):
    """YAML 1.1 reads '3e-4' as a string (it wants '3.0e-4'); people mean a number."""
    try:
        return float(text) if any(c in text for c in ".eE") and not text.isalpha() else text
    except ValueError:
        return text


def dump_config(cfg: RunConfig) -> str:
    """The config as YAML (what ``config.yaml`` in a run directory holds)."""
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


# -- error messages -----------------------------------------------------------------------------
def describe(err: dict) -> str:
    """One pydantic error as ``dotted.path: what is wrong``."""
    loc = [str(p) for p in err["loc"]]
    path = ".".join(loc) or "config"
    kind = err["type"]
    value = err.get("input")
    if kind == "literal_error":
        allowed = _allowed_values(loc)
        if allowed:
            return f"{path}: {value!r} is not one of {', '.join(map(str, allowed))}"
    if kind == "extra_forbidden":
        fields = _fields_at(loc[:-1])
        return f"{path}: unknown field; the fields here are {', '.join(fields)}"
    if kind == "missing":
        return f"{path}: required field is missing"
    if kind == "value_error":  # our model validators
        return f"{'.'.join(loc) or 'train'}: {err['msg'].removeprefix('Value error, ')}"
    message = err["msg"][0].lower() + err["msg"][1:]
    if message.startswith("input should be"):
        message = message.removeprefix("input should be ").join(["must be ", ""])
    return f"{path}: {message} (got {value!r})"


def _model_at(loc: list[str]):
    model: type[BaseModel] | None = RunConfig
    for part in loc:
        if model is None or part not in model.model_fields:
            return None
        model = _as_model(model.model_fields[part].annotation)
    return model


def _as_model(annotation):
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _fields_at(loc: list[str]) -> list[str]:
    model = _model_at(loc)
    return list(model.model_fields) if model is not None else []


def _allowed_values(loc: list[str]) -> tuple:
    model = _model_at(loc[:-1])
    if model is None or loc[-1] not in model.model_fields:
        return ()
    annotation = model.model_fields[loc[-1]].annotation
    for candidate in (annotation, *typing.get_args(annotation)):  # Literal[...] or Literal[...] | None
        if typing.get_origin(candidate) is typing.Literal:
            return typing.get_args(candidate)
    return ()
