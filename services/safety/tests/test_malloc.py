"""The fixed glibc mmap threshold (`rag_safety.malloc`)."""

from __future__ import annotations

import platform
import sys

import pytest

from rag_safety.malloc import fix_mmap_threshold


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_glibc_takes_a_fixed_threshold() -> None:
    assert fix_mmap_threshold(1_048_576) is True


def test_zero_leaves_the_c_library_alone() -> None:
    assert fix_mmap_threshold(0) is False
