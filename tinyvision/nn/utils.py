"""``torch.nn.utils`` names, and the model-wide helper ``update_bn``.

Gradient clipping lives in ``tinyvision.optim.clip``; ``update_bn`` (PyTorch's
``torch.optim.swa_utils.update_bn``) lives beside the batch norm layers whose running
statistics it re-estimates (``nn.normalization``), so that ``optim`` imports nothing from ``nn``.
"""
from ..optim.clip import clip_grad_norm_, clip_grad_value_
from .normalization import update_bn

__all__ = ["clip_grad_norm_", "clip_grad_value_", "update_bn"]
