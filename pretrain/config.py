"""Experiment configs: one YAML per published experiment, ``key=value`` overrides.

Overrides use dotted keys and YAML literals: ``optim.lr=0.03 data.root=/data/cifar``.
A config names the published rows it reproduces under ``reproduces`` (paper, table,
method, variant) so the collector can join results to them.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


class ConfigError(ValueError):
    pass


class _Loader(yaml.SafeLoader):
    """PyYAML follows YAML 1.1, where ``5e-4`` (no dot) is a string; here it is a float,
    as in YAML 1.2, so ``optim.weight_decay=5e-4`` means what a user expects."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def _load(text):
    return yaml.load(text, Loader=_Loader)


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file() and (CONFIG_DIR / path).is_file():
        path = CONFIG_DIR / path
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with open(path) as f:
        config = _load(f) or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return apply_overrides(config, overrides)


def apply_overrides(config: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a mapping")
        node[leaf] = _load(raw)
    return config


def dump_config(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False)
