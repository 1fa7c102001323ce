"""The 20e schedule (Cascade R-CNN): 20 epochs, lr x0.1 after epochs 16 and 19."""
from .schedule_1x import auto_scale_lr, optimizer, optimizer_config  # noqa: F401

lr_config = dict(policy="step", warmup="linear", warmup_iters=500, warmup_ratio=0.001, step=[16, 19])
runner = dict(type="EpochBasedRunner", max_epochs=20)
