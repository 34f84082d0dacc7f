"""A progress bar on stderr (tqdm): samples done with their rate and ETA, and shards done.
Nothing at all when disabled (stderr not a terminal, by default)."""

from __future__ import annotations

import sys
from types import TracebackType

from tqdm import tqdm


class Progress:
    def __init__(self, samples: int, shards: int, *, enabled: bool) -> None:
        self.shards, self.done = shards, 0
        self._bar = None
        if enabled:
            self._bar = tqdm(
                total=samples,
                unit="sample",
                unit_scale=True,
                desc=self._description(),
                file=sys.stderr,
                dynamic_ncols=True,
                leave=True,
            )

    def _description(self) -> str:
        return f"shards {self.done}/{self.shards}"

    def shard_done(self, samples: int) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.set_description_str(self._description(), refresh=False)
            self._bar.update(samples)

    def merging(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str("merging states", refresh=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
