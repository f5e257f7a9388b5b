"""Thread control: BLAS on one thread for many small calls, and row blocks
split between two Python threads for element-wise work."""

from concurrent.futures import ThreadPoolExecutor
from functools import cache

__all__ = ["on_two_threads", "single_threaded"]


@cache
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def single_threaded():
    """Context: BLAS/LAPACK on one thread.

    Band factorisations and triangular solves are small calls on which
    OpenBLAS's threading costs more than it saves; the controller is built
    once so that entering the context is cheap.
    """
    return _controller().limit(limits=1, user_api="blas")


def on_two_threads(n_rows, step, work):
    """``work(worker, rows)`` for the row blocks ``rows`` of ``range(n_rows)``
    (``step`` rows each), alternating between two threads (``worker`` 0 and
    1), with single-threaded BLAS; returns each worker's list of results.

    numpy's element-wise products release the GIL, and the BLAS calls on a
    block are small (two BLAS threads under each of ours would oversubscribe
    the cores). A single block runs inline.
    """

    def run(worker):
        return [
            work(worker, slice(start, min(start + step, n_rows)))
            for start in range(worker * step, n_rows, 2 * step)
        ]

    with single_threaded():
        if n_rows <= step:
            return [run(0), []]
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(run, range(2)))
