"""Test-time augmentation wrapper (MMDetection 2.x ``MultiScaleFlipAug``)."""
from __future__ import annotations

from ...errors import ConfigError
from .compose import Compose


class MultiScaleFlipAug:
    """Runs ``transforms`` once per (scale, flip) combination.

    For each scale of ``img_scale`` (or each ``scale_factor``) and for no-flip plus, when
    ``flip``, each direction, the inner pipeline sees ``results['scale']``, ``results['flip']``
    and ``results['flip_direction']`` preset, so its ``Resize``/``RandomFlip`` just apply them
    (a number as scale is a resize factor). With one combination (one scale, no flip: the
    common case) the result is that single sample, in the same format as in training; with
    several it is the list of samples, in (scale, flip) order.
    """

    def __init__(self, transforms, img_scale=None, scale_factor=None, flip: bool = False,
                 flip_direction="horizontal"):
        if (img_scale is None) == (scale_factor is None):
            raise ConfigError("MultiScaleFlipAug: give exactly one of img_scale and scale_factor")
        self.transforms = Compose(transforms)
        if img_scale is not None:
            scales = img_scale if isinstance(img_scale[0], (list, tuple)) else [img_scale]
            self.scales = [tuple(s) for s in scales]
        else:
            factors = scale_factor if isinstance(scale_factor, (list, tuple)) else [scale_factor]
            self.scales = [float(f) for f in factors]
        self.flip = flip
        self.flip_direction = ([flip_direction] if isinstance(flip_direction, str)
                               else list(flip_direction))

    def __call__(self, results: dict):
        flips = [(False, None)] + ([(True, d) for d in self.flip_direction] if self.flip else [])
        outputs = []
        for scale in self.scales:
            for flip, direction in flips:
                # copy the containers the steps append to, so each augmentation starts clean
                aug = {k: (list(v) if isinstance(v, list) else v) for k, v in results.items()}
                aug.update({"scale": scale, "flip": flip, "flip_direction": direction})
                out = self.transforms(aug)
                if out is None:
                    return None
                outputs.append(out)
        return outputs[0] if len(outputs) == 1 else outputs

    def __repr__(self) -> str:
        return (f"MultiScaleFlipAug(img_scale={self.scales}, flip={self.flip}, "
                f"flip_direction={self.flip_direction}, transforms={self.transforms!r})")
