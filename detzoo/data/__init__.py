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

# Pascal VOC and the MMDetection dataset wrappers (docs/voc.md)
from .dataset_wrappers import ConcatDataset, RepeatDataset  # noqa: E402
from .synthetic import make_shapes_voc  # noqa: E402
from .voc import VOCDataset, parse_voc_xml  # noqa: E402

__all__ += ["VOCDataset", "parse_voc_xml", "ConcatDataset", "RepeatDataset", "make_shapes_voc"]
