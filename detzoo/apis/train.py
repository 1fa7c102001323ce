"""Build what a config describes and train it: the body of ``detzoo train`` and ``quickstart``."""
from __future__ import annotations

import os
import os.path as osp
from typing import Optional


def build_datasets(cfg, with_val: bool = True):
    """(train, val) datasets of a config; val is None when not wanted or not configured."""
    from detzoo.config import instantiate

    train = instantiate(dict(cfg["data"]["train"]))
    val = None
    if with_val and cfg["data"].get("val") is not None:
        val_cfg = dict(cfg["data"]["val"])
        val_cfg["test_mode"] = True
        val = instantiate(val_cfg)
    return train, val


def load_init_checkpoints(model, rank: int = 0, distributed: bool = False) -> list:
    """The ``Pretrained`` ``init_cfg`` checkpoints of ``model`` (ImageNet backbones), loaded as
    MMDetection's train script does with ``model.init_weights()`` (without re-randomising:
    :func:`detzoo.models.backbones.pretrained.load_pretrained_weights`). Logged by rank 0.
    Distributed: rank 0 downloads into the shared cache first, the other ranks then read it."""
    import torch.distributed as dist

    from detzoo.models.backbones.pretrained import load_pretrained_weights

    wait = distributed and dist.is_available() and dist.is_initialized()
    if wait and rank != 0:
        dist.barrier()
    try:
        return load_pretrained_weights(model, log=print if rank == 0 else None, progress=rank == 0)
    finally:
        if wait and rank == 0:
            dist.barrier()  # also on failure, so the other ranks stop on the same error


def train_from_config(cfg, work_dir: str, resume_from: Optional[str] = None, load_from: Optional[str] = None,
                      validate: bool = True, seed: Optional[int] = None, device: str = "cpu",
                      deterministic: bool = False, allow_pickle: bool = False, distributed: bool = False,
                      amp: Optional[bool] = None) -> dict:
    """Write the resolved config into ``work_dir``, build datasets and model, train, evaluate.

    ``distributed``: one process of a ``torchrun`` launch (the process group is initialised here,
    gloo on CPU, NCCL on CUDA); only rank 0 writes the config, logs and checkpoints, and the
    evaluation after an epoch runs sharded over all processes (results gathered on rank 0).
    ``amp``: mixed precision (None: the config's ``amp`` / ``fp16`` keys; see detzoo.engine.amp).
    Unless resuming, the built model's ``Pretrained`` ``init_cfg`` checkpoints (the zoo configs'
    ImageNet backbones) are loaded first (:func:`load_init_checkpoints`); ``load_from`` weights
    are applied after them, as in MMDetection.
    """
    from detzoo.apis.test import evaluate_detector
    from detzoo.engine.dist import init_dist
    from detzoo.engine.seed import set_random_seed
    from detzoo.engine.trainer import train_detector
    from detzoo.models.builder import build_detector

    rank = init_dist(device=device)[0] if distributed else 0
    seed = cfg.get("seed", 0) if seed is None else seed
    set_random_seed(seed, deterministic)  # model initialisation is reproducible too
    os.makedirs(work_dir, exist_ok=True)
    stem = osp.splitext(osp.basename(cfg.filename or "config.py"))[0]
    if rank == 0:
        cfg.dump(osp.join(work_dir, f"{stem}.py"))
    train_set, val_set = build_datasets(cfg, with_val=validate)
    model = build_detector(cfg["model"], class_names=train_set.CLASSES)
    resume = resume_from or cfg.get("resume_from")
    if resume == "auto":
        from detzoo.engine.checkpoint import latest_checkpoint

        resume = latest_checkpoint(work_dir)
    if not resume:  # a resumed run restores every weight from its checkpoint instead
        load_init_checkpoints(model, rank, distributed)
    metric = (cfg.get("evaluation") or {}).get("metric", "bbox")

    def evaluate_fn(model_, dataset):
        return evaluate_detector(model_, dataset, metric, progress=False)

    return train_detector(model, (train_set, val_set) if val_set is not None else train_set, cfg, work_dir,
                          resume_from=resume_from, load_from=load_from,
                          validate=validate and val_set is not None, seed=seed, deterministic=deterministic,
                          device=device, evaluate_fn=evaluate_fn, config_text=cfg.pretty_text,
                          allow_pickle=allow_pickle, distributed=distributed, amp=amp)
