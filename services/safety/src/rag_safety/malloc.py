"""A fixed glibc mmap threshold for the safety service's process.

glibc serves an allocation above the mmap threshold with its own mapping, returned to the system when
freed, and raises the threshold each time such a block is freed (up to 32 MB). The injection
classifier allocates and frees attention buffers of a different size for each text length, so the
threshold soon climbs above them; they then come from the heap, whose freed gaps the next, differently
sized buffers fit badly, and resident memory climbs. Measured: the service alone, 4 users sending new
questions, 689 MB at start, ~1,000 MB after 15 s and still rising (1,110 MB after 75 s); with a fixed
1 MB threshold ~760 MB, flat, for ~18% fewer checks per second. Setting the threshold also stops
glibc adjusting it. Other C libraries (musl) have no `mallopt`: nothing is changed there.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

M_MMAP_THRESHOLD = -3
logger = logging.getLogger(__name__)


def fix_mmap_threshold(nbytes: int) -> bool:
    """Whether glibc now maps every allocation of at least `nbytes` on its own (0: leave glibc's)."""
    if nbytes <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        logger.info("no mallopt in this C library: the mmap threshold stays its own")
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, ctypes.c_int(nbytes)))
