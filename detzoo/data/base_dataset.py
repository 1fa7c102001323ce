"""What the detection datasets share: running the pipeline on one image and re-drawing a
training sample that a pipeline step dropped (MMDetection 2.x ``CustomDataset.__getitem__``) or
whose image cannot be read."""
from __future__ import annotations

import logging
from typing import Optional

import numpy as np
from torch.utils.data import Dataset

from ..errors import DataError, UnreadableImageError

logger = logging.getLogger("detzoo")

# a pipeline that drops this many samples in a row is considered broken rather than unlucky
_MAX_RESAMPLE = 100


class DetectionDataset(Dataset):
    """Base of CocoDataset and VOCDataset. Subclasses set ``data_infos`` (img_info dicts with
    ``id``), ``img_prefix``, ``pipeline``, ``test_mode``, ``flag`` (aspect-ratio groups),
    ``proposals`` (None or one array per image), ``ann_file`` and implement ``get_ann_info``.

    ``dataset[i]`` or ``dataset[(i, seed)]``: the pipeline output of image ``i``; a seed gives the
    random steps a generator of their own (identical batches for any number of workers).

    Training (``test_mode=False``): an image that cannot be read or decoded is skipped, like a
    sample the pipeline dropped: another image of the same aspect-ratio group is drawn (from the
    sample's seed, so a resumed run draws the same one) and the returned dict carries
    ``skipped_images``, the list of skipped paths, which ``collate`` gathers per batch and the
    trainer counts in its log. In test mode an unreadable image is an error.
    """

    accepts_sample_seed = True

    def prepare(self, idx: int, rng: Optional[np.random.Generator] = None):
        """Run the pipeline on image ``idx``; None if a step dropped it."""
        info = self.data_infos[idx]
        results = dict(img_info=info, ann_info=self.get_ann_info(idx), img_prefix=self.img_prefix,
                       img_id=info["id"], bbox_fields=[], mask_fields=[])
        if self.proposals is not None:
            results["proposals"] = self.proposals[idx]
        if rng is not None:
            results["rng"] = rng
        return self.pipeline(results)

    def __getitem__(self, index):
        idx, seed = index if isinstance(index, tuple) else (index, None)
        rng = None if seed is None else np.random.default_rng(seed)
        if self.test_mode:
            return self.prepare(idx, rng)
        skipped: list[str] = []
        for _ in range(_MAX_RESAMPLE):
            try:
                data = self.prepare(idx, rng)
            except UnreadableImageError as exc:
                logger.warning(f"{exc}: skipped, another training image takes its place")
                skipped.append(exc.path or str(exc))
                data = None
            if data is not None:
                if skipped:
                    data["skipped_images"] = skipped
                return data
            # as mmdet: retry with a random image of the same aspect-ratio group
            pool = np.flatnonzero(self.flag == self.flag[idx])
            pick = np.random.randint(len(pool)) if rng is None else rng.integers(len(pool))
            idx = int(pool[pick])
        if len(skipped) == _MAX_RESAMPLE:
            raise DataError(f"{self.ann_file}: {_MAX_RESAMPLE} images in a row could not be read "
                            f"(last: {skipped[-1]}); is img_prefix {self.img_prefix!r} right?")
        raise DataError(f"{self.ann_file}: the pipeline dropped {_MAX_RESAMPLE} samples in a row"
                        + (f" ({len(skipped)} of them unreadable images)" if skipped else ""))
