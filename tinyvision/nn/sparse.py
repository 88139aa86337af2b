"""Embedding: a learned lookup table."""
from .. import backend
from ..tensor import Tensor
from . import init
from .module import Module, new_parameter


class Embedding(Module):
    """y[..., :] = W[idx[...], :], rows of a (num_embeddings, embedding_dim) table.

    The lookup is integer-array indexing, whose backward adds each output gradient into its
    row, so an index used k times receives the sum of its k gradients. W ~ N(0, 1).

    Shapes: idx (...) integers in [0, num_embeddings) -> y (..., embedding_dim).
    """

    def __init__(self, num_embeddings, embedding_dim, device=None, dtype=None):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = init.normal_(new_parameter((num_embeddings, embedding_dim), device=device, dtype=dtype))

    def forward(self, idx):
        idx = idx.data if isinstance(idx, Tensor) else idx
        if getattr(idx, "dtype", None) is None or idx.dtype.kind not in "iu":
            raise TypeError(f"Embedding expects integer indices, got {getattr(idx, 'dtype', type(idx).__name__)}")
        # Bounds check on the host only: on a GPU it would synchronise every step.
        if backend.device_of(idx) == "cpu" and idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.num_embeddings):
            raise IndexError(f"Embedding indices must lie in [0, {self.num_embeddings}), "
                             f"got values in [{int(idx.min())}, {int(idx.max())}]")
        return self.weight[idx]

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"
