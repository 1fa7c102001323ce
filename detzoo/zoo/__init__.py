"""The model zoo: config-name resolution, the model index (metafiles) and the checkpoint hub."""
from detzoo.zoo.configs import configs_root, list_config_names, resolve_config
from detzoo.zoo.hub import checkpoint_dir, download, fetch, home_dir, resolve_zoo_checkpoint
from detzoo.zoo.index import STATUSES, ZooEntry, filter_entries, find_entries, get_entry, load_index

__all__ = ["configs_root", "list_config_names", "resolve_config", "load_index", "find_entries",
           "get_entry", "filter_entries", "ZooEntry", "STATUSES", "download", "fetch",
           "resolve_zoo_checkpoint", "home_dir", "checkpoint_dir"]
