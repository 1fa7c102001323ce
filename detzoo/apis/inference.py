"""Load a detector by config name or path, and run it on images.

    model = init_detector("faster_rcnn_r50_fpn_1x_coco", checkpoint="x.pth", device="cpu")
    det = inference_detector(model, "demo.jpg")   # or a BGR uint8 array, or a list of either
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np
import torch

from detzoo.data.class_names import default_class_names
from detzoo.errors import ConfigError
from detzoo.structures import DetResult

ImageInput = Union[str, Path, np.ndarray]


def resolve_class_names(cfg, num_classes: Optional[int], checkpoint_meta: Optional[dict] = None) -> tuple:
    """The class names of a model: the checkpoint's, else the config's test set's, else defaults."""
    meta_names = (checkpoint_meta or {}).get("CLASSES") or (checkpoint_meta or {}).get("classes")
    if meta_names:
        return tuple(meta_names)
    data = cfg.get("data") or {}
    for split in ("test", "val", "train"):
        names = (data.get(split) or {}).get("classes")
        if names:
            return tuple(names)
    if cfg.get("classes"):
        return tuple(cfg["classes"])
    return default_class_names(num_classes or 0)


def init_detector(config, checkpoint: Optional[str] = None, device: Union[str, torch.device] = "cpu",
                  cfg_options: Optional[dict] = None, allow_pickle: bool = False):
    """Build a detector from a config (path, zoo name or loaded Config) and load weights.

    The returned model is in eval mode on ``device``, with ``model.cfg`` (the resolved config)
    and ``model.class_names`` set. ``checkpoint="zoo"`` takes the published weights of the
    model-zoo entry ``config`` names (downloaded once into ``$DETZOO_HOME``, see detzoo.zoo.hub).
    ``allow_pickle`` permits legacy checkpoints that need full unpickling (this can run arbitrary
    code: only for files you trust).
    """
    from detzoo.config import Config, load_config
    from detzoo.engine.checkpoint import load_checkpoint, load_model_weights
    from detzoo.models.builder import _num_classes, build_detector

    if checkpoint == "zoo":  # the zoo row's config and its published weights (downloaded, cached)
        from detzoo.zoo.hub import resolve_zoo_checkpoint

        config, checkpoint = resolve_zoo_checkpoint(config)
    cfg = config if isinstance(config, Config) else load_config(config)
    cfg = copy.deepcopy(cfg)
    if cfg_options:
        cfg.merge_from_dotted(cfg_options)
    ckpt = None
    if checkpoint is not None:
        ckpt = load_checkpoint(checkpoint, map_location="cpu", weights_only=not allow_pickle)
    model = build_detector(cfg["model"])
    model.class_names = resolve_class_names(cfg, _num_classes(model), (ckpt or {}).get("meta"))
    if ckpt is not None:
        load_model_weights(model, ckpt, strict=True)
    model.cfg = cfg
    return model.to(device).eval()


def build_test_pipeline(cfg, from_array: bool = False):
    """The config's test pipeline; with ``from_array`` its loading step takes an in-memory image."""
    from detzoo.data.transforms import Compose, LoadImageFromFile, LoadImageFromNDArray

    steps = list(cfg["data"]["test"]["pipeline"])
    if from_array:
        first = steps[0]
        step_type = first.get("type") if isinstance(first, dict) else type(first)
        if step_type in (LoadImageFromFile, "LoadImageFromFile"):
            steps[0] = dict(type=LoadImageFromNDArray)
    return Compose(steps)


def prepare_images(cfg, imgs: Sequence[ImageInput], device) -> dict:
    """Run the test pipeline on paths or BGR arrays and collate them into one batch."""
    from detzoo.data.loader import collate

    samples = []
    file_pipeline = array_pipeline = None
    for img in imgs:
        if isinstance(img, np.ndarray):
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ConfigError(f"an image array must be HxWx3 BGR uint8, got shape {img.shape} dtype {img.dtype}")
            array_pipeline = array_pipeline or build_test_pipeline(cfg, from_array=True)
            samples.append(array_pipeline({"img": img}))
        else:
            file_pipeline = file_pipeline or build_test_pipeline(cfg)
            samples.append(file_pipeline({"filename": str(img)}))
    batch = collate(samples)
    batch["img"] = batch["img"].to(device)
    return batch


@torch.inference_mode()
def inference_detector(model, imgs: Union[ImageInput, Sequence[ImageInput]],
                       batch_size: int = 1) -> Union[DetResult, List[DetResult]]:
    """Detect objects in one image (path or HxWx3 BGR uint8 array) or a list of them.

    Returns a DetResult (a list of them for a list input) with boxes in the original image's
    pixels. Images are run ``batch_size`` at a time (1 by default: padding a batch changes
    results slightly, as in the reference).
    """
    from .fast_path import inference_autocast

    single = not isinstance(imgs, (list, tuple))
    items = [imgs] if single else list(imgs)
    results: List[DetResult] = []
    for start in range(0, len(items), batch_size):
        batch = prepare_images(model.cfg, items[start:start + batch_size], model.device)
        with inference_autocast(model):  # bf16 regions of an optimize_for_inference model, else no-op
            predictions = model.predict(batch["img"], batch["img_metas"], rescale=True)
        results.extend(r.to("cpu") for r in predictions)
    return results[0] if single else results
