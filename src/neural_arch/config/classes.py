"""Your own classes in a config: ``class_path: my_package.MyNet`` with ``init_args``, as LightningCLI spells it.

``import_class`` finds the class (the current directory is on the import path,
as with ``python -m``); ``check_args`` checks ``init_args`` against its signature
and type annotations before anything is built, one line per problem::

    model.init_args.n_layer: must be a valid integer, unable to parse string as an integer (got 'two')
    model.init_args: widht not accepted by TinyNet; it takes width, depth
    model.init_args: TinyNet requires width
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import typing

from pydantic import TypeAdapter, ValidationError

from neural_arch.errors import ConfigError


def import_class(class_path: str, field: str):
    """The object ``module.sub.Name`` names; ``ConfigError`` naming ``field`` if it cannot be found."""
    module_name, _, name = class_path.rpartition(".")
    if not module_name or not name:
        raise ConfigError(f"{field}.class_path: {class_path!r} is not module.ClassName (e.g. my_models.TinyNet)")
    if os.getcwd() not in sys.path and "" not in sys.path:  # `python -m` puts it there; the console script does not
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise ConfigError(f"{field}.class_path: cannot import {module_name!r} ({e}); run from the directory that "
                          "holds it, add it to PYTHONPATH, or install its package") from None
    except Exception as e:  # noqa: BLE001 - the user's module failed while importing: say so in one line
        raise ConfigError(f"{field}.class_path: importing {module_name!r} raised {type(e).__name__}: {e}") from None
    obj = getattr(module, name, None)
    if obj is None or not callable(obj):
        raise ConfigError(f"{field}.class_path: module {module_name!r} has no class {name!r}")
    return obj


def check_args(cls, args: dict, field: str, supplied=(), name: str | None = None) -> dict:
    """``args`` checked against ``cls``'s constructor and converted to its annotated types.

    ``supplied``: arguments the builder adds itself (e.g. ``vocab_size`` from the data), not
    reported as missing; ``name``: how messages call the class. Returns the converted arguments;
    raises ``ConfigError``, one line per problem.
    """
    name = name or getattr(cls, "__name__", str(cls))
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return dict(args)  # a builtin without a signature: nothing to check
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = [k for k, p in params.items() if p.kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                              inspect.Parameter.VAR_KEYWORD)]
    problems = []
    unknown = [k for k in args if k not in params and not takes_any]
    if unknown:
        problems.append(f"{field}: {', '.join(unknown)} not accepted by {name}; it takes {', '.join(named)}")
    missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty and k in named
               and k not in args and k not in supplied]
    if missing:
        problems.append(f"{field}: {name} requires {', '.join(missing)}")
    hints = _type_hints(cls)
    out = dict(args)
    for key, value in args.items():
        if key in hints and key not in unknown:
            try:
                out[key] = TypeAdapter(hints[key]).validate_python(value)
            except ValidationError as e:
                message = e.errors()[0]["msg"]
                message = "must be " + message.removeprefix("Input should be ") if message.startswith(
                    "Input should be") else message[0].lower() + message[1:]
                problems.append(f"{field}.{key}: {message} (got {value!r})")
            except Exception:  # noqa: BLE001, S110 - an annotation pydantic cannot read: the class checks it
                pass
    if problems:
        raise ConfigError("\n".join(problems))
    return out


def _type_hints(cls) -> dict:
    target = cls.__init__ if inspect.isclass(cls) else cls
    try:
        return typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - unresolvable annotations: no type checks
        return {}
