"""Frozen leading stages and frozen BatchNorm statistics, shared by the backbones.

MMDetection backbones keep their first ``frozen_stages`` stages in eval mode with no gradients,
and with ``norm_eval`` keep every BatchNorm in eval mode while the rest trains (fine-tuning from
ImageNet statistics). ``model.train()`` must re-apply both, so the rule lives in ``train``.
"""
from __future__ import annotations

from typing import List

import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm


class FrozenStagesMixin:
    """Mixed into an ``nn.Module`` backbone that sets ``norm_eval`` and implements
    ``_frozen_modules()`` (the modules of its frozen stages, in any order)."""

    norm_eval: bool

    def _frozen_modules(self) -> List[nn.Module]:
        raise NotImplementedError

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
