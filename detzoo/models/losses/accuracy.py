"""Top-1 classification accuracy in percent, logged next to the losses."""
import torch


def accuracy(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """pred [N, C] scores, target [N] labels -> scalar percent (0 for N = 0)."""
    if target.numel() == 0:
        return pred.new_tensor(0.0)
    correct = (pred.argmax(dim=1) == target).float().sum()
    return correct * (100.0 / target.numel())
