"""Fast CPU kernel of the matrix products in ``ops.linalg``."""
from .. import parallel


def matmul(a, b):
    """a @ b (NumPy arrays), split over threads along a's first axis when large
    (``parallel.matmul``): OpenBLAS itself runs at one thread beside tinyvision's threads."""
    return parallel.matmul(a, b)
