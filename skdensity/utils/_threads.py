"""Thread control: BLAS on one thread for many small calls, and row blocks
split between two Python threads for element-wise work."""

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache

__all__ = ["on_two_threads", "single_threaded"]


@cache
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


# BLAS's thread count is one setting for the whole process: sections that
# want one thread are counted, so that the first to enter sets it and the last
# to leave restores it, whichever threads they run in.
_LOCK = threading.Lock()
_sections = 0
_limiter = None


@contextmanager
def single_threaded():
    """Context: BLAS/LAPACK on one thread.

    Band factorisations and triangular solves are small calls on which
    OpenBLAS's threading costs more than it saves. Safe to enter from several
    threads at once (and nested): the limit holds until the last leaves.
    """
    global _sections, _limiter
    with _LOCK:
        if _sections == 0:
            _limiter = _controller().limit(limits=1, user_api="blas")
        _sections += 1
    try:
        yield
    finally:
        with _LOCK:
            _sections -= 1
            if _sections == 0:
                _limiter.restore_original_limits()
                _limiter = None


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
