"""MMDetection's YOLOv3 schedule: SGD lr 1e-3 for a total batch of 64 (8 GPUs x 8), 2000
iterations of linear warm-up from 0.1 x lr ("same as burn-in in darknet"), lr x0.1 after epochs
218 and 246, 273 epochs, gradient norm clipped at 35."""
import torch

optimizer = dict(type=torch.optim.SGD, lr=0.001, momentum=0.9, weight_decay=0.0005)
optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))
lr_config = dict(policy="step", warmup="linear", warmup_iters=2000, warmup_ratio=0.1, step=[218, 246])
runner = dict(type="EpochBasedRunner", max_epochs=273)
auto_scale_lr = dict(enable=True, base_batch_size=64)
