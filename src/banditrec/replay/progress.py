"""Progress bars for long passes over a log (tqdm; on a terminal only unless asked)."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm


def progress_bar(total: int | None, desc: str, progress: bool | None = None, **kwargs: Any) -> tqdm:
    """`progress`: True always shows, False never, None shows on a terminal only."""
    disable = None if progress is None else not progress
    return tqdm(total=total, desc=desc, disable=disable, dynamic_ncols=True, **kwargs)
