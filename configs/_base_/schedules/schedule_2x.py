"""The 2x schedule: 24 epochs, lr x0.1 after epochs 16 and 22."""
from .schedule_1x import auto_scale_lr, optimizer, optimizer_config

lr_config = dict(policy="step", warmup="linear", warmup_iters=500, warmup_ratio=0.001, step=[16, 22])
runner = dict(type="EpochBasedRunner", max_epochs=24)
