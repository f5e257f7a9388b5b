"""A clear error before an allocation that would not fit in memory."""

__all__ = ["available_memory", "check_allocation"]


def available_memory():
    """Bytes the system can still give this process: ``MemAvailable``, and
    no more than what an address-space limit (``ulimit -v``) leaves; None
    where neither is known."""
    bounds = [_proc_value("/proc/meminfo", "MemAvailable:")]
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        used = _proc_value("/proc/self/status", "VmSize:")
        if limit != resource.RLIM_INFINITY and used is not None:
            bounds.append(max(0, limit - used))
    except (ImportError, OSError, ValueError):
        pass
    known = [b for b in bounds if b is not None]
    return min(known) if known else None


def _proc_value(path, key):
    """A ``kB`` field of a ``/proc`` file, in bytes, or None."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
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
