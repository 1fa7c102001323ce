"""The 1x schedule: 12 epochs, lr x0.1 after epochs 8 and 11, 500-iteration linear warm-up.

lr 0.02 is for a total batch of 16 images; ``auto_scale_lr`` scales it to the actual batch.
"""
import torch

optimizer = dict(type=torch.optim.SGD, lr=0.02, momentum=0.9, weight_decay=0.0001)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy="step", warmup="linear", warmup_iters=500, warmup_ratio=0.001, step=[8, 11])
runner = dict(type="EpochBasedRunner", max_epochs=12)
auto_scale_lr = dict(enable=True, base_batch_size=16)
