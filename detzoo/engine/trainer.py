"""Epoch-based training loop with MMDetection 2.x config semantics (mmcv ``EpochBasedRunner``).

Config sections read (plain dicts, ConfigDicts or a ``Config``):
  data.samples_per_gpu / workers_per_gpu (``data.train_dataloader`` overrides them),
  optimizer, optimizer_config.grad_clip, lr_config, runner.max_epochs (or total_epochs),
  checkpoint_config (interval, max_keep_ckpts, save_last), log_config (interval, ignore_last),
  evaluation (interval, save_best, rule), auto_scale_lr (enable, base_batch_size),
  find_unused_parameters, sync_bn, fp16 / amp (mixed precision, see detzoo/engine/amp.py),
  resume_from, load_from, data.batch_augments (steps applied to each
  training batch on the device, seeded by (seed, iteration); see detzoo/data/batch_augment.py).

Epochs and iterations are 0-based inside the loop; logs, checkpoint names and ``meta["epoch"]``
are 1-based ("epoch_3.pth" holds the weights after three epochs), as in mmcv.
"""
from __future__ import annotations

import glob
import math
import numbers
import os
import re
import sys
import time
from collections import OrderedDict
from typing import Any, Callable, Mapping

import torch
from torch import nn

from detzoo.engine import checkpoint as ckpt_io
from detzoo.engine.amp import AmpContext, amp_requested
from detzoo.engine.dist import (all_reduce_max, all_reduce_mean, convert_sync_batchnorm, get_dist_info,
                                init_dist, revert_sync_batchnorm)
from detzoo.engine.logging import LogBuffer, TrainLogger, peak_memory_mb
from detzoo.engine.lr_schedule import build_lr_schedule
from detzoo.engine.optim import auto_scale_lr, build_optimizer, clip_gradients
from detzoo.engine.seed import preserved_rng_state, set_random_seed, set_rng_state
from detzoo.errors import CheckpointError, ConfigError, DataError, DetzooError
from detzoo.utils.memory import ENV as MALLOC_ENV, keep_freed_memory

EvaluateFn = Callable[[nn.Module, Any], Mapping[str, Any]]


def _get(section: Any, key: str, default: Any = None) -> Any:
    """``section[key]`` for dicts / Config objects, ``default`` when absent or None."""
    if section is None:
        return default
    value = section.get(key, default) if hasattr(section, "get") else getattr(section, key, default)
    return default if value is None else value


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Tensors (also inside dicts, lists and tuples) moved to ``device``; other values kept."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, Mapping):
        return {k: move_to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list):
        return [move_to_device(v, device) for v in batch]
    if isinstance(batch, tuple):
        return tuple(move_to_device(v, device) for v in batch)
    return batch


def parse_losses(losses: Mapping[str, Any]) -> tuple[torch.Tensor, "OrderedDict[str, torch.Tensor]"]:
    """(total loss to back-propagate, scalar log values incl. ``loss``) from ``model.loss``.

    A tensor value is averaged, a list of tensors (one per feature level) is summed after
    averaging each; only keys containing ``"loss"`` enter the total (mmdet ``_parse_losses``).
    """
    log_vars: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for name, value in losses.items():
        if isinstance(value, torch.Tensor):
            log_vars[name] = value.float().mean()  # fp32 sums also under mixed precision
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, torch.Tensor) for v in value):
            log_vars[name] = sum(v.float().mean() for v in value)
        elif isinstance(value, (int, float)) and "loss" not in name:
            log_vars[name] = torch.tensor(float(value))
        else:
            raise DetzooError(
                f"model.loss returned '{name}' as {type(value).__name__}: expected a tensor or a "
                "non-empty list of tensors"
            )
    loss_terms = [v for k, v in log_vars.items() if "loss" in k]
    if not loss_terms:
        raise DetzooError(f"model.loss returned no key containing 'loss' (keys: {list(losses)})")
    total = sum(loss_terms)
    log_vars["loss"] = total
    return total, log_vars


class _LossForward(nn.Module):
    """Makes ``model.loss`` the ``forward`` of a module, so DDP can wrap it and sync gradients."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.model.loss(batch)


def _batch_size(batch: Mapping[str, Any]) -> int:
    """Images in a collated batch (``img_metas`` entries, else the first dim of ``img``)."""
    metas = batch.get("img_metas")
    if isinstance(metas, (list, tuple)):
        return len(metas)
    img = batch.get("img")
    return int(img.shape[0]) if isinstance(img, torch.Tensor) else 0


def _set_sampler_epoch(loader: Any, epoch: int) -> None:
    """Tell the sampler(s) which epoch starts, so the shuffle is seeded by ``seed + epoch``."""
    seen = set()
    batch_sampler = getattr(loader, "batch_sampler", None)
    for sampler in (getattr(loader, "sampler", None), batch_sampler, getattr(batch_sampler, "sampler", None)):
        if sampler is not None and id(sampler) not in seen and hasattr(sampler, "set_epoch"):
            seen.add(id(sampler))
            sampler.set_epoch(epoch)


def _key_rule(key: str, rule: str | None) -> str:
    # mmcv EvalHook: keys containing 'loss' are minimised, everything else maximised.
    if rule is None:
        rule = "less" if "loss" in key.lower() else "greater"
    if rule not in ("greater", "less"):
        raise ConfigError(f"evaluation.rule must be 'greater' or 'less', got {rule!r}")
    return rule


class Trainer:
    """One training run. Build it with the arguments of :func:`train_detector`, then :meth:`run`."""

    def __init__(self, model: nn.Module, datasets: Any, cfg: Any, work_dir: str | os.PathLike, *,
                 resume_from: str | None = None, load_from: str | None = None, validate: bool = True,
                 seed: int = 0, deterministic: bool = False, device: str | torch.device = "cpu",
                 distributed: bool = False, evaluate_fn: EvaluateFn | None = None,
                 config_text: str | None = None, timestamp: str | None = None,
                 allow_pickle: bool = False, amp: bool | None = None) -> None:
        if isinstance(datasets, (list, tuple)):
            self.train_dataset = datasets[0]
            self.val_dataset = datasets[1] if len(datasets) > 1 else None
        else:
            self.train_dataset, self.val_dataset = datasets, None
        self.model = model
        self.cfg = cfg
        self.work_dir = os.fspath(work_dir)
        self.resume_from = resume_from or _get(cfg, "resume_from")
        self.load_from = load_from or _get(cfg, "load_from")
        self.validate = validate
        self.seed = seed
        self.deterministic = deterministic
        self.device = torch.device(device)
        self.distributed = distributed
        self.evaluate_fn = evaluate_fn
        self.allow_pickle = allow_pickle
        self.amp = amp_requested(cfg) if amp is None else bool(amp)
        self.timestamp = timestamp
        if config_text is None:
            config_text = getattr(cfg, "pretty_text", None) if not isinstance(cfg, dict) else None
            config_text = config_text if isinstance(config_text, str) else repr(cfg)
        self.config_text = config_text
        filename = getattr(cfg, "filename", None)
        self.exp_name = os.path.basename(filename) if isinstance(filename, str) else None
        self._read_config(cfg)

    # --- configuration --------------------------------------------------------------------
    def _read_config(self, cfg: Any) -> None:
        data = _get(cfg, "data", {})
        loader_cfg = dict(_get(data, "train_dataloader", {}))
        self.samples_per_gpu = int(loader_cfg.get("samples_per_gpu", _get(data, "samples_per_gpu", 2)))
        self.workers_per_gpu = int(loader_cfg.get("workers_per_gpu", _get(data, "workers_per_gpu", 2)))
        self.optimizer_cfg = _get(cfg, "optimizer")
        if self.optimizer_cfg is None:
            raise ConfigError("config has no 'optimizer' (e.g. optimizer = dict(type='SGD', lr=0.02, ...))")
        self.grad_clip = _get(_get(cfg, "optimizer_config", {}), "grad_clip")
        self.lr_config = _get(cfg, "lr_config")
        runner = _get(cfg, "runner", {})
        runner_type = _get(runner, "type", "EpochBasedRunner")
        if runner_type != "EpochBasedRunner":
            raise ConfigError(f"runner.type={runner_type!r} is not supported; use 'EpochBasedRunner'")
        self.max_epochs = int(_get(runner, "max_epochs", _get(cfg, "total_epochs", 0)))
        if self.max_epochs <= 0:
            raise ConfigError("config has no positive runner.max_epochs (e.g. runner = dict("
                              "type='EpochBasedRunner', max_epochs=12))")
        ckpt = _get(cfg, "checkpoint_config", {})
        self.ckpt_interval = int(_get(ckpt, "interval", 1))
        self.max_keep_ckpts = int(_get(ckpt, "max_keep_ckpts", -1))
        self.save_last = bool(_get(ckpt, "save_last", True))
        log = _get(cfg, "log_config", {})
        self.log_interval = max(1, int(_get(log, "interval", 50)))
        self.ignore_last = bool(_get(log, "ignore_last", True))
        evaluation = _get(cfg, "evaluation", {})
        self.eval_interval = int(_get(evaluation, "interval", 1))
        self.save_best = _get(evaluation, "save_best")
        self.best_rule = _get(evaluation, "rule")
        scale = _get(cfg, "auto_scale_lr", {})
        self.auto_scale = bool(_get(scale, "enable", True))
        self.base_batch_size = int(_get(scale, "base_batch_size", 16))
        self.find_unused_parameters = bool(_get(cfg, "find_unused_parameters", False))
        self.sync_bn = bool(_get(cfg, "sync_bn", False))
        # steps on whole training batches, e.g. BatchRandomResize (docs/augmentations.md)
        self.batch_augments = None
        if _get(data, "batch_augments"):
            from detzoo.data.batch_augment import build_batch_augments

            self.batch_augments = build_batch_augments(_get(data, "batch_augments"))

    # --- set-up ---------------------------------------------------------------------------
    def _setup_sync_bn(self) -> None:
        """``sync_bn=True`` or SyncBN layers from ``norm_cfg``: synchronised batch statistics when
        more than one process trains; plain batch norm (with a log line) in a single process."""
        has_sync = any(isinstance(m, nn.SyncBatchNorm) for m in self.model.modules())
        if self.world_size > 1 and (self.sync_bn or has_sync):
            self.model, count = convert_sync_batchnorm(self.model, self.device)
            self.logger.info(f"SyncBN: {count} batch-norm layers synchronise over {self.world_size} processes")
        elif self.sync_bn or has_sync:
            self.model, count = revert_sync_batchnorm(self.model)
            self.logger.info(f"SyncBN requested but training in a single process: plain batch norm "
                             f"({count} SyncBN layers reverted)")

    def _build_loader(self) -> Any:
        from detzoo.data import build_dataloader

        return build_dataloader(self.train_dataset, samples_per_gpu=self.samples_per_gpu,
                                workers_per_gpu=self.workers_per_gpu, shuffle=True, seed=self.seed,
                                dist=self.distributed)

    def _class_names(self) -> tuple[str, ...] | None:
        for owner, attr in ((self.model, "class_names"), (self.model, "CLASSES"),
                            (self.train_dataset, "CLASSES"), (self.train_dataset, "class_names")):
            names = getattr(owner, attr, None)
            if names:
                return tuple(names)
        return None

    def _restore(self, optimizer: torch.optim.Optimizer, schedule: Any) -> dict | None:
        """Load ``resume_from`` (everything) or ``load_from`` (weights); returns the RNG state."""
        self._amp_state = None
        if self.resume_from and self.rank == 0:
            for path in ckpt_io.remove_partial_files(self.work_dir):
                self.logger.info(f"removed {path}, a partial file left by an interrupted save")
        if self.resume_from == "auto":
            self.resume_from = ckpt_io.latest_checkpoint(self.work_dir)
            if self.resume_from is None:
                self.logger.info(f"resume_from='auto': no checkpoint in {self.work_dir}, starting fresh")
        if self.resume_from:
            checkpoint = ckpt_io.load_checkpoint(self.resume_from, weights_only=not self.allow_pickle)
            ckpt_io.load_model_weights(self.model, checkpoint, strict=True)
            if "optimizer" in checkpoint:
                try:
                    optimizer.load_state_dict(checkpoint["optimizer"])
                except (ValueError, KeyError) as exc:
                    raise CheckpointError(f"checkpoint {self.resume_from}: its optimizer state does not "
                                          f"fit this config's optimizer ({exc})") from None
            else:
                self.logger.warning(f"{self.resume_from} has no optimizer state: momentum restarts")
            saved_schedule = checkpoint.get("scheduler")
            if saved_schedule is not None and saved_schedule != schedule.state_dict():
                self.logger.warning(f"the lr schedule of {self.resume_from} ({saved_schedule}) differs "
                                    f"from the config's; using the config's: {schedule}")
            meta = checkpoint["meta"]
            self._amp_state = meta.get("amp_scaler")
            self.start_epoch, self.global_iter = int(meta.get("epoch", 0)), int(meta.get("iter", 0))
            self.hook_msgs = self._recover_best(dict(meta.get("hook_msgs") or {}))
            self.logger.info(f"resumed from {self.resume_from}: epoch {self.start_epoch}, iter {self.global_iter}")
            return checkpoint.get("rng")
        if self.load_from:
            result = ckpt_io.load_model_weights(self.model, self.load_from, strict=False,
                                                allow_pickle=self.allow_pickle)
            problems = result.describe()
            self.logger.info(f"load weights from {self.load_from}" + (f" ({problems})" if problems else ""))
        return None

    def _recover_best(self, hook_msgs: dict) -> dict:
        # The best checkpoint is written after the epoch checkpoint (evaluation runs after
        # saving, as in mmcv), so a best file of the resumed epoch has the newer best score.
        pattern = os.path.join(self.work_dir, f"best_*_epoch_{self.start_epoch}.pth")
        for path in glob.glob(pattern):
            newer = dict(ckpt_io.read_meta(path).get("hook_msgs") or {})
            if "best_score" in newer:
                hook_msgs.update(newer)
        return hook_msgs

    # --- the loop -------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train; returns ``{"epoch", "iter", "last_checkpoint", "best_checkpoint", "best_score",
        "metrics"}`` (metrics: one dict per evaluation)."""
        if self.distributed:
            init_dist(device=self.device)
            if self.device.type == "cuda":
                self.device = torch.device("cuda", torch.cuda.current_device())
        self.rank, self.world_size = get_dist_info()
        set_random_seed(self.seed, self.deterministic)
        self.logger = TrainLogger(self.work_dir, self.timestamp, enabled=self.rank == 0)
        if keep_freed_memory():  # a third of a CPU iteration went to page faults (detzoo/utils/memory.py)
            self.logger.info(f"host allocator keeps freed memory for reuse ({MALLOC_ENV}=0 to disable)")
        try:
            return self._run()
        finally:
            self.logger.close()

    def _run(self) -> dict[str, Any]:
        log = self.logger
        log.dump_json({"env_info": f"Python {sys.version.split()[0]}, PyTorch {torch.__version__}, "
                                   f"device {self.device}, world size {self.world_size}",
                       "config": self.config_text, "seed": self.seed, "exp_name": self.exp_name})
        self._setup_sync_bn()
        self.model.to(self.device)
        self.amp_ctx = AmpContext(self.device, self.amp, _get(_get(self.cfg, "fp16", {}), "loss_scale", "dynamic"))
        if self.amp:
            log.info(f"mixed precision: {self.amp_ctx.describe()}")
        loader = self._build_loader()
        self.epoch_len = len(loader)
        if self.epoch_len == 0:
            raise DataError(f"the training set ({len(self.train_dataset)} images) gives no batch of "
                            f"{self.samples_per_gpu} images per GPU")
        self.max_iters = self.max_epochs * self.epoch_len
        lr = float(_get(self.optimizer_cfg, "lr"))
        if self.auto_scale:
            batch = self.samples_per_gpu * self.world_size
            scaled = auto_scale_lr(lr, actual_batch_size=batch, base_batch_size=self.base_batch_size)
            log.info(f"lr scaled: {lr:g} x {batch}/{self.base_batch_size} = {scaled:g}")
            lr = scaled
        optimizer = build_optimizer(self.model, {**dict(self.optimizer_cfg), "lr": lr})
        schedule = build_lr_schedule(self.lr_config, lr, max_epochs=self.max_epochs, epoch_len=self.epoch_len)
        self.start_epoch, self.global_iter, self.hook_msgs = 0, 0, {}
        rng_state = self._restore(optimizer, schedule)
        self.amp_ctx.load_state_dict(self._amp_state)
        forward = self.model.loss
        if self.distributed:
            ddp = nn.parallel.DistributedDataParallel(
                _LossForward(self.model), device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=self.find_unused_parameters)
            forward = ddp
        log.info(f"start training: {self.max_epochs} epochs x {self.epoch_len} iters, "
                 f"{self.samples_per_gpu} images/GPU x {self.world_size} GPUs, work_dir {self.work_dir}")
        if rng_state is not None:
            set_rng_state(rng_state)  # last, so that nothing above consumes the restored stream
        history: list[dict] = []
        self._time_total, self._iters_timed = 0.0, 0
        self.skipped_images = 0
        for epoch in range(self.start_epoch, self.max_epochs):
            self._train_epoch(epoch, loader, forward, optimizer, schedule)
            self._after_epoch(epoch, optimizer, schedule, history)
        return {"epoch": self.max_epochs, "iter": self.global_iter,
                "last_checkpoint": self.hook_msgs.get("last_ckpt"),
                "best_checkpoint": self.hook_msgs.get("best_ckpt"),
                "best_score": self.hook_msgs.get("best_score"), "metrics": history}

    def _train_epoch(self, epoch: int, loader: Any, forward: Callable, optimizer: torch.optim.Optimizer,
                     schedule: Any) -> None:
        _set_sampler_epoch(loader, epoch)
        self.model.train()
        buffer = LogBuffer()
        tick = time.perf_counter()
        for inner, batch in enumerate(loader):
            data_time = time.perf_counter() - tick
            skipped = batch.pop("skipped_images", None)
            if skipped:
                self._warn_skipped(epoch, inner, skipped)
            lrs = schedule.apply(optimizer, epoch, self.global_iter)
            batch = move_to_device(batch, self.device)
            if self.batch_augments is not None:
                batch = self.batch_augments(batch, seed=self.seed, iteration=self.global_iter)
            with self.amp_ctx.autocast():
                losses = forward(batch)
            total, log_vars = parse_losses(losses)
            names = list(log_vars)
            counts = torch.tensor([float(_batch_size(batch)), float(len(skipped or ()))], device=self.device)
            stacked = torch.cat([torch.stack([v.detach().float().to(self.device) for v in log_vars.values()]),
                                 counts])
            values = all_reduce_mean(stacked).tolist()  # one host sync per iteration, as mmdet
            # images trained and unreadable images skipped in this iteration, over all ranks
            skipped_all_ranks = round(values.pop() * self.world_size)
            imgs_all_ranks = values.pop() * self.world_size
            self.skipped_images += skipped_all_ranks
            self._check_finite(epoch, inner, dict(zip(names, values)))
            optimizer.zero_grad(set_to_none=True)
            self.amp_ctx.backward(total)
            if self.grad_clip:
                self.amp_ctx.unscale_(optimizer)
            grad_norm = clip_gradients(self.model.parameters(), self.grad_clip)
            if grad_norm is not None:
                grad_norm = float(grad_norm)
                if not self.amp_ctx.skips_overflow:  # a loss scaler skips such a step itself
                    self._check_finite(epoch, inner, {"grad_norm": grad_norm})
            self.amp_ctx.step(optimizer)
            self.global_iter += 1
            now = time.perf_counter()
            iter_time, tick = now - tick, now
            self._time_total += iter_time
            self._iters_timed += 1
            buffer.update({"data_time": data_time, **dict(zip(names, values))})
            if grad_norm is not None:
                buffer.update({"grad_norm": grad_norm})
            buffer.update({"time": iter_time, "_imgs": imgs_all_ranks})
            last = inner + 1 == self.epoch_len
            if (inner + 1) % self.log_interval == 0 or (last and not self.ignore_last and len(buffer)):
                self._log_interval(epoch, inner, lrs[0], buffer)

    def _check_finite(self, epoch: int, inner: int, values: Mapping[str, float]) -> None:
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if not bad:
            return
        what = ", ".join(f"{k} = {v}" for k, v in bad.items())
        last = self.hook_msgs.get("last_ckpt")
        raise DetzooError(
            f"non-finite value at epoch {epoch + 1}, iteration {inner + 1}/{self.epoch_len} (global "
            f"iteration {self.global_iter + 1}): {what}. Training stopped before the update; no "
            f"checkpoint was written with these weights (last checkpoint: {last or 'none'}). "
            "Try a lower lr, a longer warmup or optimizer_config.grad_clip."
        )

    def _warn_skipped(self, epoch: int, inner: int, paths: list) -> None:
        self.logger.warning(f"epoch {epoch + 1}, iteration {inner + 1}: skipped {len(paths)} unreadable "
                            f"image(s), another image took each one's place: {', '.join(map(str, paths))}")

    def _log_interval(self, epoch: int, inner: int, lr: float, buffer: LogBuffer) -> None:
        values = buffer.average()
        # images of one iteration over all ranks / mean iteration time of the interval
        imgs_per_s = values.pop("_imgs") / max(values["time"], 1e-12)
        memory = int(all_reduce_max(torch.tensor([peak_memory_mb(self.device)], device=self.device)).item())
        ordered: "OrderedDict[str, Any]" = OrderedDict(memory=memory)
        ordered.update(values)
        if self.skipped_images:  # unreadable images skipped so far by this run, all processes
            ordered["skipped_images"] = self.skipped_images
        ordered.move_to_end("time")
        ordered["imgs_per_s"] = imgs_per_s
        eta = self._time_total / max(self._iters_timed, 1) * (self.max_iters - self.global_iter)
        self.logger.log_train(epoch + 1, inner + 1, self.epoch_len, lr, eta, ordered)
        buffer.clear()

    # --- end of epoch ---------------------------------------------------------------------
    def _meta(self, epoch: int) -> dict[str, Any]:
        meta = {"epoch": epoch + 1, "iter": self.global_iter, "config": self.config_text,
                "seed": self.seed, "exp_name": self.exp_name, "hook_msgs": dict(self.hook_msgs)}
        scaler_state = self.amp_ctx.state_dict()
        if scaler_state:
            meta["amp_scaler"] = scaler_state
        classes = self._class_names()
        if classes is not None:
            meta["CLASSES"] = classes
        return meta

    def _save(self, filename: str, epoch: int, optimizer: Any, schedule: Any) -> str:
        path = os.path.join(self.work_dir, filename)
        ckpt_io.save_checkpoint(path, self.model, optimizer, schedule, meta=self._meta(epoch))
        return path

    def _check_weights_finite(self, epoch: int) -> None:
        # A finite loss can still give an update that overflows the weights; never save those.
        if torch.stack([torch.isfinite(p).all() for p in self.model.parameters()]).all():
            return
        bad = [name for name, p in self.model.named_parameters() if not torch.isfinite(p).all()]
        raise DetzooError(
            f"non-finite weights after epoch {epoch + 1} ({', '.join(bad[:5])}); training stopped "
            f"and no checkpoint was written (last checkpoint: {self.hook_msgs.get('last_ckpt') or 'none'}). "
            "Try a lower lr, a longer warmup or optimizer_config.grad_clip."
        )

    def _after_epoch(self, epoch: int, optimizer: Any, schedule: Any, history: list) -> None:
        done = epoch + 1
        self._check_weights_finite(epoch)
        if done % self.ckpt_interval == 0 or (self.save_last and done == self.max_epochs):
            if self.rank == 0:
                path = os.path.join(self.work_dir, f"epoch_{done}.pth")
                previous = self.hook_msgs.get("last_ckpt")
                self.hook_msgs["last_ckpt"] = path
                try:
                    self._save(os.path.basename(path), epoch, optimizer, schedule)
                except CheckpointError as exc:
                    self.hook_msgs["last_ckpt"] = previous
                    raise CheckpointError(
                        f"{exc}. Training stopped after epoch {done}; the previous checkpoint "
                        f"({previous or 'none'}) and the latest pointer are unchanged: free some space "
                        "and continue with `detzoo train ... --resume`") from exc
                ckpt_io.update_latest(self.work_dir, path)
                self.logger.info(f"saved checkpoint {path}")
                self._remove_old_checkpoints()
        if not (self.validate and self.val_dataset is not None and done % self.eval_interval == 0):
            return
        if self.evaluate_fn is None:
            if done == self.eval_interval:
                self.logger.info("no evaluate_fn given: skipping evaluation")
            return
        # Evaluation must not consume the random numbers training will use next, or a run
        # resumed from this epoch's checkpoint would diverge from the uninterrupted one.
        with preserved_rng_state(), torch.no_grad():
            self.model.eval()
            metrics = self.evaluate_fn(self.model, self.val_dataset)
            self.model.train()
        if self.rank != 0:
            return
        if not isinstance(metrics, Mapping):
            raise DetzooError(f"evaluate_fn returned {type(metrics).__name__}, expected a dict of metrics")
        metrics = dict(metrics)
        history.append({"epoch": done, **metrics})
        lr = optimizer.param_groups[0]["lr"]
        self.logger.log_val(done, len(self.val_dataset), lr, metrics)
        if self.save_best:
            self._update_best(epoch, metrics, optimizer, schedule)

    def _update_best(self, epoch: int, metrics: dict, optimizer: Any, schedule: Any) -> None:
        key = self.save_best
        if key == "auto":
            numeric = [k for k, v in metrics.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)]
            if not numeric:
                return
            key = numeric[0]
        if key not in metrics:
            raise ConfigError(f"evaluation.save_best={self.save_best!r} is not among the metrics "
                              f"{sorted(metrics)}")
        score, rule = float(metrics[key]), _key_rule(key, self.best_rule)
        best = self.hook_msgs.get("best_score")
        if best is not None and not (score > best if rule == "greater" else score < best):
            return
        previous = self.hook_msgs.get("best_ckpt")
        name = f"best_{key}_epoch_{epoch + 1}.pth"
        self.hook_msgs.update(best_score=score, best_ckpt=os.path.join(self.work_dir, name))
        self._save(name, epoch, optimizer, schedule)
        if previous and os.path.abspath(previous) != os.path.abspath(self.hook_msgs["best_ckpt"]) \
                and os.path.isfile(previous):
            os.remove(previous)
        self.logger.info(f"best {key} so far: {score:.4f}, saved {self.hook_msgs['best_ckpt']}")

    def _remove_old_checkpoints(self) -> None:
        if self.max_keep_ckpts <= 0:
            return
        found = []
        for path in glob.glob(os.path.join(self.work_dir, "epoch_*.pth")):
            match = re.fullmatch(r"epoch_(\d+)\.pth", os.path.basename(path))
            if match:
                found.append((int(match.group(1)), path))
        for _, path in sorted(found)[:-self.max_keep_ckpts]:
            os.remove(path)


def train_detector(model: nn.Module, datasets: Any, cfg: Any, work_dir: str | os.PathLike, *,
                   resume_from: str | None = None, load_from: str | None = None, validate: bool = True,
                   seed: int = 0, deterministic: bool = False, device: str | torch.device = "cpu",
                   distributed: bool = False, evaluate_fn: EvaluateFn | None = None,
                   config_text: str | None = None, timestamp: str | None = None,
                   allow_pickle: bool = False, amp: bool | None = None) -> dict[str, Any]:
    """Train ``model`` (a detector with ``loss(batch) -> dict``) as an MMDetection 2.x config says.

    Args:
        datasets: the training dataset, or ``(train, val)``.
        cfg: the config (``Config``, ConfigDict or dict); see the module docstring for fields.
        work_dir: where ``<timestamp>.log``, ``<timestamp>.log.json`` and checkpoints go.
        resume_from: checkpoint to continue from exactly (weights, optimizer, epoch, iteration,
            RNG), or ``"auto"`` for the work dir's latest; defaults to ``cfg.resume_from``.
        load_from: checkpoint whose weights initialise the model (non-strict); defaults to
            ``cfg.load_from``. Ignored when resuming.
        validate: evaluate every ``evaluation.interval`` epochs with ``evaluate_fn(model, val)``.
        seed, deterministic: see :func:`detzoo.engine.seed.set_random_seed`; the sampler
            shuffles with ``seed + epoch``.
        device: where the model trains (``"cuda"`` becomes each process's GPU when distributed).
        distributed: one process per GPU under ``torchrun``; wraps the model in DDP.
        config_text: resolved config text stored in checkpoints' meta and the JSON log
            (default: ``cfg.pretty_text``).
        allow_pickle: let checkpoints unpickle arbitrary objects (trusted files only).
        amp: mixed precision (bf16 autocast on CPU, fp16 autocast + GradScaler on CUDA);
            ``None`` reads the config's ``amp`` / ``fp16`` keys.

    Returns ``{"epoch", "iter", "last_checkpoint", "best_checkpoint", "best_score", "metrics"}``.
    Raises DetzooError when a loss or the gradient norm becomes NaN/inf.
    """
    return Trainer(model, datasets, cfg, work_dir, resume_from=resume_from, load_from=load_from,
                   validate=validate, seed=seed, deterministic=deterministic, device=device,
                   distributed=distributed, evaluate_fn=evaluate_fn, config_text=config_text,
                   timestamp=timestamp, allow_pickle=allow_pickle, amp=amp).run()
