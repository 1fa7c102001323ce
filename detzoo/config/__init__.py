"""Python config files: inheritance by relative imports, dotted overrides, dump, instantiate.

>>> cfg = load_config("faster_rcnn_r50_fpn_1x_coco")          # zoo name or file path
>>> cfg.merge_from_dotted(parse_cli_options(["optimizer.lr=0.01"]))
>>> model = instantiate(cfg.model)
"""
from detzoo.config.build import REGISTRY, instantiate, register, resolve_type
from detzoo.config.config import Config, ConfigDict, load_config
from detzoo.config.overrides import parse_cli_options, parse_option_value

__all__ = [
    "Config",
    "ConfigDict",
    "REGISTRY",
    "instantiate",
    "load_config",
    "parse_cli_options",
    "parse_option_value",
    "register",
    "resolve_type",
]
