"""Set-up every dann process does first: glibc's allocator, the log format, the compilation cache.

The command line calls these before anything else runs; tests call them too, so that they train
as the command does."""

import logging
import os
from pathlib import Path

log = logging.getLogger("dann")


def configure_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("dann").setLevel(logging.INFO)
    logging.getLogger("absl").setLevel(logging.ERROR)  # orbax's notes about read-only managers
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request of the Bluesky client


def use_compilation_cache(directory: str):
    """Keep compiled programs on disk (DANN_JAX_CACHE_DIR). Programs that compile in under 0.2 s are
    not worth a file, unless JAX's own JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS says otherwise (the
    tests set 0: their programs are tiny, and each `dann` process they start would compile them
    again). A directory that cannot be written costs one warning, not the command."""
    if directory.lower() == "off":
        return
    path = Path(directory).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            raise PermissionError("not writable")
    except OSError as error:
        log.warning("no compilation cache (DANN_JAX_CACHE_DIR=%s: %s)", directory, error.strerror or error)
        return
    import jax

    jax.config.update("jax_compilation_cache_dir", str(path))
    try:
        minimum = float(os.environ.get("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2"))
    except ValueError:
        log.warning("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS is not a number of seconds; using 0.2")
        minimum = 0.2
    jax.config.update("jax_persistent_cache_min_compile_time_secs", minimum)


def keep_freed_memory() -> bool:
    """Tell glibc to keep freed memory for reuse instead of returning it to the kernel.

    A training step allocates and frees hundreds of MB of activations and gradients. By default
    glibc gives each buffer over 32 MB, and large buffers on worker threads, a fresh mmap and
    unmaps it on free, so every step page-faults that memory in again: many times the minor faults,
    and slower training (docs/measurements.md). With one arena, no mmap and no trimming
    the heap grows to a step's peak once and stays there; the cost is that the process keeps its
    peak memory. Runs before JAX starts its threads (an existing thread keeps its own arena).
    Returns False where there is no glibc (macOS, musl), where nothing changes.
    """
    import ctypes
    import ctypes.util

    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # glibc's malloc.h
    return all([mallopt(m_arena_max, 1), mallopt(m_mmap_max, 0), mallopt(m_trim_threshold, 2**31 - 1)])
