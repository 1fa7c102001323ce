"""Time detzoo's pure-PyTorch ops on the cases of the ops table in spec/performance.md.

    python benchmarks/bench_ops.py [--reps 7] [--threads 2] [--yardstick]

Prints the median (and fastest) milliseconds per case next to torchvision's compiled kernels
as measured for the spec, and the ratio to them (target: <= 2). Inputs are seeded:
  - nms: corners x1, y1 ~ U(0, 1000), width/height ~ U(0, 100), scores ~ U(0, 1), IoU 0.5;
  - batched_nms: the same 10000 boxes with labels ~ U{0..79};
  - roi_align: features 1x256x200x336 (P2 of a 1344x800 image, spatial_scale 1/4), 1000 RoIs
    with corners uniform in the image and sides ~ U(8, 200) image pixels, 7x7, aligned.
With ``--yardstick`` the shared ResNet-50 trunk is timed too (``bench/yardstick.py``), and the
torchvision numbers are rescaled by (trunk now / 1.75 s, the trunk time when they were taken),
since absolute times on the shared machines drift by up to 2x.
"""
import argparse
import os
import statistics
import sys
import time

import torch
from timing import repeat_times  # benchmarks/timing.py, beside this script

from detzoo.ops import batched_nms, nms, roi_align

# torchvision 0.28 C++ kernels, 2 threads (spec/performance.md, "Ops" table), in ms.
TORCHVISION_MS = {
    "nms 1000": 3.5,
    "nms 10000": 177.0,
    "batched_nms 10000 x 80 classes": 12.8,
    "roi_align 1000 RoIs sampling 0": 2186.0,
    "roi_align 1000 RoIs sampling 2": 657.0,
}
TRUNK_SECONDS_AT_SPEC_TIME = 1.75


def random_boxes(n: int, generator: torch.Generator) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator) * 1000
    wh = torch.rand(n, 2, generator=generator) * 100
    return torch.cat([xy, xy + wh], dim=1)


def time_ms(fn, reps: int, warmup: int = 2):
    times = [t * 1000 for t in repeat_times(fn, reps, warmup)]
    return statistics.median(times), min(times)


def build_cases():
    g = torch.Generator().manual_seed(0)
    boxes_1k, scores_1k = random_boxes(1000, g), torch.rand(1000, generator=g)
    boxes_10k, scores_10k = random_boxes(10000, g), torch.rand(10000, generator=g)
    labels_10k = torch.randint(0, 80, (10000,), generator=g)
    features = torch.randn(1, 256, 200, 336, generator=g)
    corner = torch.rand(1000, 2, generator=g) * torch.tensor([1344.0, 800.0])
    sides = 8 + torch.rand(1000, 2, generator=g) * 192
    rois = torch.cat([torch.zeros(1000, 1), corner, corner + sides], dim=1)
    return {
        "nms 1000": lambda: nms(boxes_1k, scores_1k, 0.5),
        "nms 10000": lambda: nms(boxes_10k, scores_10k, 0.5),
        "batched_nms 10000 x 80 classes":
            lambda: batched_nms(boxes_10k, scores_10k, labels_10k, 0.5),
        "roi_align 1000 RoIs sampling 0": lambda: roi_align(features, rois, 7, 0.25, 0, True),
        "roi_align 1000 RoIs sampling 2": lambda: roi_align(features, rois, 7, 0.25, 2, True),
    }


def trunk_seconds(threads: int) -> float:
    bench_dir = os.environ.get("DETZOO_BENCH_DIR", "/work/shared/bench")
    sys.path.insert(0, bench_dir)
    from yardstick import time_trunk  # noqa: E402  (shared script, not part of the package)
    return time_trunk(threads=threads)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--yardstick", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    scale = 1.0
    if args.yardstick:
        trunk = trunk_seconds(args.threads)
        scale = trunk / TRUNK_SECONDS_AT_SPEC_TIME
        print(f"trunk {trunk:.3f} s -> torchvision numbers scaled by {scale:.2f}")
    print(f"{'case':34s} {'median ms':>10s} {'min ms':>9s} {'tv ms':>8s} {'ratio':>6s}")
    with torch.inference_mode():
        for name, fn in build_cases().items():
            median, fastest = time_ms(fn, args.reps)
            reference = TORCHVISION_MS[name] * scale
            print(f"{name:34s} {median:10.1f} {fastest:9.1f} {reference:8.1f} "
                  f"{median / reference:6.2f}")


if __name__ == "__main__":
    main()
