"""Logging, checkpointing and start-up defaults shared by every config."""
checkpoint_config = dict(interval=1)
log_config = dict(interval=50)
evaluation = dict(interval=1, metric="bbox")
load_from = None
resume_from = None
seed = 0
