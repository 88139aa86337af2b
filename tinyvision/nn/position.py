"""Position information for Transformers: attention itself is permutation-equivariant (shuffle
the tokens and the outputs shuffle the same way), so where a token sits must be added.

- ``LearnedPositionEmbedding``: a trained vector per position, added to the tokens (ViT's).
- ``sincos_1d`` / ``sincos_2d`` and their modules: fixed sine-cosine codes (Vaswani et al.),
  one frequency per pair of channels, so relative offsets are linear maps of the codes.
- ``RelativePositionBias``: a learned scalar per head and relative offset, added to the
  attention logits instead of the tokens (Swin's).
"""
import numpy as np

from .. import backend, ops
from . import init
from .module import Module, new_parameter


def sincos_1d(num_positions, dim, base=10000.0):
    """The Transformer's sine-cosine code for positions 0 .. num_positions-1, interleaved:

        PE(pos, 2i)     = sin(pos / base^(2i / dim))
        PE(pos, 2i + 1) = cos(pos / base^(2i / dim))

    Wavelengths grow geometrically from 2 pi to base * 2 pi across the channels. ``num_positions``
    may also be an array of (possibly fractional) positions. Returns float32 (N, dim).
    """
    if dim % 2:
        raise ValueError(f"sine-cosine position codes need an even dim, got {dim}")
    pos = np.arange(num_positions, dtype=np.float64) if np.ndim(num_positions) == 0 else \
        np.asarray(num_positions, dtype=np.float64).reshape(-1)
    angles = pos[:, None] / base ** (np.arange(0, dim, 2) / dim)     # (N, dim / 2)
    out = np.empty((len(pos), dim))
    out[:, 0::2], out[:, 1::2] = np.sin(angles), np.cos(angles)
    return out.astype(np.float32)


def sincos_2d(grid_size, dim, base=10000.0):
    """2-D sine-cosine codes for an h x w grid, row-major (the order of ViT's patch tokens):
    the first dim/2 channels are ``sincos_1d`` of the row, the last dim/2 of the column.
    Returns float32 (h w, dim); dim must be divisible by 4."""
    if dim % 4:
        raise ValueError(f"2-D sine-cosine position codes need dim divisible by 4, got {dim}")
    h, w = grid_size
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    return np.concatenate([sincos_1d(rows.reshape(-1), dim // 2, base),
                           sincos_1d(cols.reshape(-1), dim // 2, base)], axis=1)


class _AddPositionEmbedding(Module):
    """Adds ``self.pos_embed`` (1, N, D) to tokens x (B, N, D)."""

    def forward(self, x):
        if tuple(x.shape[1:]) != tuple(self.pos_embed.shape[1:]):
            raise ValueError(f"{type(self).__name__} expected tokens (B, {self.pos_embed.shape[1]}, "
                             f"{self.pos_embed.shape[2]}), got {tuple(x.shape)}")
        return x + self.pos_embed

    def extra_repr(self):
        return f"num_positions={self.pos_embed.shape[1]}, dim={self.pos_embed.shape[2]}"


class LearnedPositionEmbedding(_AddPositionEmbedding):
    """x + E_pos with E_pos a Parameter ``pos_embed`` (1, N, D), trunc-normal std 0.02 (timm).
    Shapes: x (B, N, D) -> (B, N, D)."""

    def __init__(self, num_positions, dim, device=None, dtype=None):
        super().__init__()
        self.pos_embed = init.trunc_normal_(new_parameter((1, num_positions, dim), device=device, dtype=dtype),
                                            std=0.02)


class SinCosPositionEmbedding1d(_AddPositionEmbedding):
    """x + PE with PE = ``sincos_1d(num_positions, dim)`` held as a fixed buffer ``pos_embed``
    (1, N, D): no gradient, not in the state dict (it is a function of the shape).
    Shapes: x (B, N, D) -> (B, N, D)."""

    def __init__(self, num_positions, dim, device=None):
        super().__init__()
        _register_fixed(self, sincos_1d(num_positions, dim), device)


class SinCosPositionEmbedding2d(_AddPositionEmbedding):
    """x + PE with PE = ``sincos_2d(grid_size, dim)`` for tokens of an h x w patch grid,
    preceded by ``num_prefix_tokens`` tokens (class token) whose code is zero; a fixed,
    non-persistent buffer ``pos_embed`` (1, P + h w, D). Shapes: x (B, P + h w, D) -> same."""

    def __init__(self, grid_size, dim, num_prefix_tokens=0, device=None):
        super().__init__()
        codes = sincos_2d(grid_size, dim)
        _register_fixed(self, np.concatenate([np.zeros((num_prefix_tokens, dim), np.float32), codes]), device)


def _register_fixed(module, codes, device):
    xp = backend.xp_for(backend.check_device(device or backend.get_default_device()))
    module.register_buffer("pos_embed", xp.asarray(codes[None]), persistent=False)


class RelativePositionBias(Module):
    """Swin's relative position bias for attention inside an h x w window of tokens.

    Between query token i at (y_i, x_i) and key token j at (y_j, x_j) the offset
    (y_i - y_j, x_i - x_j) takes (2h - 1)(2w - 1) values; each head learns one scalar per
    offset in ``relative_position_bias_table`` ((2h-1)(2w-1), num_heads), trunc-normal std 0.02.
    The buffer ``relative_position_index`` (h w, h w) holds, for every pair (i, j), the row

        (y_i - y_j + h - 1) * (2w - 1) + (x_i - x_j + w - 1)

    of its offset, so forward is one gather: B[head, i, j] = table[index[i, j], head]. The
    bias is added to the logits, softmax(Q K^T / sqrt(d) + B) V, and is the same for every
    position of the pair: attention learns "look one patch to the left" once for the image.

    forward() -> (num_heads, h w, h w), to pass as ``bias`` to attention.
    """

    def __init__(self, window_size, num_heads, device=None, dtype=None):
        super().__init__()
        h, w = (window_size, window_size) if isinstance(window_size, int) else tuple(window_size)
        self.window_size, self.num_heads = (h, w), num_heads
        self.relative_position_bias_table = init.trunc_normal_(
            new_parameter(((2 * h - 1) * (2 * w - 1), num_heads), device=device, dtype=dtype), std=0.02)
        xp = backend.xp_for(self.relative_position_bias_table.device)
        self.register_buffer("relative_position_index", xp.asarray(relative_position_index(h, w)),
                             persistent=False)

    def forward(self):
        n = self.window_size[0] * self.window_size[1]
        index = self.relative_position_index.data.reshape(-1)
        bias = self.relative_position_bias_table[index]                   # (n n, heads): a gather
        return ops.permute(ops.reshape(bias, n, n, self.num_heads), 2, 0, 1)

    def extra_repr(self):
        return f"window_size={self.window_size}, num_heads={self.num_heads}"


def relative_position_index(h, w):
    """The (h w, h w) int64 table of ``RelativePositionBias``: the row of offset
    (y_i - y_j, x_i - x_j) for tokens i, j of an h x w window in row-major order."""
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    ys, xs = ys.reshape(-1), xs.reshape(-1)
    dy = ys[:, None] - ys[None, :] + (h - 1)                              # in [0, 2h - 2]
    dx = xs[:, None] - xs[None, :] + (w - 1)                              # in [0, 2w - 2]
    return (dy * (2 * w - 1) + dx).astype(np.int64)
