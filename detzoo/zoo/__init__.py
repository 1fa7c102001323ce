"""The model zoo: config-name resolution (and later the model index / hub)."""
from detzoo.zoo.configs import configs_root, list_config_names, resolve_config

__all__ = ["configs_root", "list_config_names", "resolve_config"]
