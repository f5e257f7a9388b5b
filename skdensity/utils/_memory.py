"""A clear error before an allocation that would not fit in memory."""

import os

__all__ = ["available_memory", "check_allocation"]


def available_memory():
    """Bytes the system can still give this process (``MemAvailable``), or
    None where that is unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_allocation(n_bytes, what, remedy):
    """A MemoryError naming ``what`` and its size, before allocating
    ``n_bytes`` that exceed the memory available, with ``remedy``."""
    available = available_memory()
    if available is not None and n_bytes > available:
        raise MemoryError(
            f"{what} needs {n_bytes / 2**30:.1f} GiB but only {available / 2**30:.1f} GiB "
            f"of memory are available; {remedy}"
        )
