"""Necks: backbone feature tuple -> feature pyramid tuple."""
from .fpn import FPN

__all__ = ["FPN"]
