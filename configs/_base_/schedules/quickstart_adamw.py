"""The quickstarts' schedule: AdamW, a 200-iteration linear warm-up and a per-iteration cosine
decay (so `--epochs` rescales the whole schedule), evaluation once at the end, a checkpoint per
epoch (the last two kept). A config that trains longer sets ``max_epochs`` and updates
``runner``/``evaluation`` (see retinanet_r18_fpn_quickstart)."""
import torch

max_epochs = 5
optimizer = dict(type=torch.optim.AdamW, lr=0.0015, weight_decay=0.05, foreach=True)
optimizer_config = dict(grad_clip=dict(max_norm=10, norm_type=2))
lr_config = dict(policy="CosineAnnealing", by_epoch=False, min_lr_ratio=0.01,
                 warmup="linear", warmup_iters=200, warmup_ratio=0.001)
runner = dict(type="EpochBasedRunner", max_epochs=max_epochs)
auto_scale_lr = dict(enable=False, base_batch_size=16)
log_config = dict(interval=50)
# quickstart evaluates once after training; `detzoo train` evaluates at the end only
evaluation = dict(interval=max_epochs, metric="bbox")
checkpoint_config = dict(interval=1, max_keep_ckpts=2)
