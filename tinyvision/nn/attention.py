"""Multi-head self-attention (Vaswani et al. 2017), with timm's layout and names.

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V
    MultiHead(X) = Concat(head_1, ..., head_h) W_O,   head_i = Attention(X W_i^Q, X W_i^K, X W_i^V)

The h per-head projections W_i^Q, W_i^K, W_i^V (D x d_k each, d_k = D / h) are the column
blocks of one (D x 3D) matrix, applied as one Linear ``qkv``; W_O is the Linear ``proj``.
"""
from .. import ops
from ..ops.attention import PackedSelfAttention, as_mask, scaled_dot_product_attention
from .dropout import Dropout
from .linear import Linear
from .module import Module

__all__ = ["MultiheadSelfAttention", "scaled_dot_product_attention"]


class MultiheadSelfAttention(Module):
    """Multi-head self-attention over a token sequence.

    Args:
        dim: D, the token width (divisible by num_heads).
        num_heads: h; each head attends with d_k = D / h features.
        qkv_bias: bias in the fused qkv projection.
        attn_drop: dropout on the attention weights A (training only).
        proj_drop: dropout on the output.
        rel_pos_bias: optional module whose call returns a bias (h, N, N) (or broadcastable to
            (B, h, N, N)) added to the logits, e.g. ``RelativePositionBias``.

    forward(x, mask=None, bias=None, return_attention=False):
        x: (B, N, D) tokens.
        mask: optional boolean, broadcastable to (B, h, N, N) (e.g. (B, 1, 1, N) for key
            padding): True where query n may attend to key m; False gets zero weight.
        bias: optional extra logit bias broadcastable to (B, h, N, N) (added to rel_pos_bias's).
        return_attention: also return A (B, h, N, N), whose rows sum to 1. A is then computed
            by composed ops, so it is differentiable; otherwise the fused op runs (faster, less
            memory; see ``tinyvision.ops.attention``).
        Returns (B, N, D), or (output, A).
    """

    def __init__(self, dim, num_heads, qkv_bias=True, attn_drop=0.0, proj_drop=0.0, rel_pos_bias=None):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = Linear(dim, 3 * dim, bias=qkv_bias)
        self.attn_drop = Dropout(attn_drop)
        self.proj = Linear(dim, dim)
        self.proj_drop = Dropout(proj_drop)
        self.rel_pos_bias = rel_pos_bias

    def forward(self, x, mask=None, bias=None, return_attention=False):
        if x.ndim != 3 or x.shape[2] != self.dim:
            raise ValueError(f"MultiheadSelfAttention expected tokens (B, N, {self.dim}), got {tuple(x.shape)}")
        B, N, D = x.shape
        # (B, N, 3D) -> (B, N, 3, h, d) -> (3, B, h, N, d): one reshape and one permute give
        # every head's Q, K and V (the 3D outputs are ordered [q heads | k heads | v heads]).
        qkv = ops.permute(ops.reshape(self.qkv(x), B, N, 3, self.num_heads, self.head_dim), 2, 0, 3, 1, 4)
        mask = as_mask(mask, x.device)
        if self.rel_pos_bias is not None:
            rel = self.rel_pos_bias()
            bias = rel if bias is None else rel + bias
        if return_attention:
            out, attn = self._composed(qkv[0], qkv[1], qkv[2], mask, bias)
        else:
            inputs = (qkv,) if bias is None else (qkv, bias)
            out = PackedSelfAttention.apply(*inputs, mask=mask, scale=self.scale,
                                            dropout_p=self.attn_drop.p if self.training else 0.0)
        # Concat(head_1..head_h): (B, h, N, d) -> (B, N, h, d) -> (B, N, D), then W_O.
        out = self.proj_drop(self.proj(ops.reshape(ops.transpose(out, 1, 2), B, N, D)))
        return (out, attn) if return_attention else out

    def _composed(self, q, k, v, mask, bias):
        """Attention from separate ops, keeping A in the graph (for return_attention)."""
        logits = ops.matmul(q, ops.transpose(k, -2, -1)) * self.scale
        if bias is not None:
            logits = logits + bias
        if mask is not None:
            logits = ops.where(mask, logits, float("-inf"))
        attn = ops.softmax(logits, axis=-1)
        return ops.matmul(self.attn_drop(attn), v), attn

    def extra_repr(self):
        return f"dim={self.dim}, num_heads={self.num_heads}, head_dim={self.head_dim}"
