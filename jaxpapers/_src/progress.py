"""Progress display for long host-side loops (chunks of a jitted scan, seeds, grid cells)."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

__all__ = ["progress"]


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "",
             enabled: bool = True) -> Iterator[T]:
    """Iterate with a tqdm bar on stderr (plain text when not a terminal); silent if disabled."""
    if not enabled:
        yield from iterable
        return
    from tqdm.auto import tqdm

    yield from tqdm(iterable, total=total, desc=desc, file=sys.stderr, dynamic_ncols=True,
                    mininterval=0.5, disable=None if sys.stderr.isatty() else False)
