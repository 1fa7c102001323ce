"""Pipeline steps: callables ``results: dict -> dict | None`` (MMDetection 2.x names and keys)."""
from .compose import Compose, build_step, sample_rng
from .formatting import (DEFAULT_META_KEYS, Collect, DefaultFormatBundle, ImageToTensor,
                         PackDetInputs)
from .geometric import Pad, RandomFlip, Resize, flip_boxes, rescale_size
from .loading import (LoadAnnotations, LoadImageFromFile, LoadImageFromNDArray, LoadProposals,
                      decode_image)
from .photometric import Normalize
from .test_time_aug import MultiScaleFlipAug

# name -> class, so a pipeline may also name steps with strings: dict(type="Resize", ...)
TRANSFORMS = {cls.__name__: cls for cls in (
    LoadImageFromFile, LoadImageFromNDArray, LoadAnnotations, LoadProposals, Resize, RandomFlip, Pad,
    Normalize, DefaultFormatBundle, ImageToTensor, Collect, PackDetInputs, MultiScaleFlipAug)}

__all__ = ["Compose", "build_step", "sample_rng", "TRANSFORMS", "DEFAULT_META_KEYS",
           "LoadImageFromFile", "LoadImageFromNDArray", "LoadAnnotations", "LoadProposals",
           "decode_image",
           "Resize", "RandomFlip", "Pad", "Normalize", "flip_boxes", "rescale_size",
           "DefaultFormatBundle", "ImageToTensor", "Collect", "PackDetInputs",
           "MultiScaleFlipAug"]

# augmentations of the SSD / YOLOv3 recipes (docs/augmentations.md)
from .augment import (Expand, MinIoURandomCrop, MixUp, MultiImageMixDataset,  # noqa: E402
                      RandomInterpResize)
from .photometric import PhotoMetricDistortion  # noqa: E402

TRANSFORMS.update({cls.__name__: cls for cls in (
    PhotoMetricDistortion, Expand, MinIoURandomCrop, MixUp, RandomInterpResize)})
__all__ += ["PhotoMetricDistortion", "Expand", "MinIoURandomCrop", "MixUp",
            "MultiImageMixDataset", "RandomInterpResize"]
