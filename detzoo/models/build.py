"""Turn a component given as a config dict into the object, leaving built objects alone.

Heads receive their assigner/sampler through ``train_cfg`` dicts that may come straight from a
config (not yet instantiated) or from ``detzoo.config.instantiate`` (already objects).
"""
from typing import Any


def build_if_needed(component: Any) -> Any:
    if isinstance(component, dict) and "type" in component:
        from detzoo.config import instantiate

        return instantiate(component)
    return component
