"""``torch.nn.utils`` names: gradient clipping lives in ``tinyvision.optim.clip``."""
from ..optim.clip import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_"]
