"""Datasets, pipeline steps, batching and normalisation presets."""
from .coco import CocoDataset, read_coco_json
from .loader import (DistributedGroupSampler, GroupSampler, SampleSeedSampler, build_dataloader,
                     build_test_dataloader, collate)
from .norm_presets import NORM_PRESETS, get_norm_cfg
from .synthetic import make_shapes_dataset
from .transforms import (Collect, Compose, DefaultFormatBundle, ImageToTensor, LoadAnnotations,
                         LoadImageFromFile, LoadImageFromNDArray, MultiScaleFlipAug, Normalize,
                         PackDetInputs, Pad, RandomFlip, Resize)

__all__ = ["CocoDataset", "read_coco_json", "collate", "GroupSampler", "DistributedGroupSampler",
           "SampleSeedSampler", "build_dataloader", "build_test_dataloader", "NORM_PRESETS",
           "get_norm_cfg", "make_shapes_dataset", "Compose", "LoadImageFromFile",
           "LoadImageFromNDArray", "LoadAnnotations", "Resize", "RandomFlip", "Pad", "Normalize",
           "DefaultFormatBundle", "ImageToTensor", "Collect", "PackDetInputs",
           "MultiScaleFlipAug"]
