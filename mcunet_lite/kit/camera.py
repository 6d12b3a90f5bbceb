"""A camera for Lab 03's patch executor: it hands out windows of one int8 frame and notes each one.

Patch-based inference (MCUNetV2 section 3.1) never holds the whole input: each patch reads its
own input window from the sensor (or from Flash), so the grader can tell patch-based execution
from layer-by-layer execution cut afterwards by what was read. Reading is the camera's only door
to the pixels: the frame lives in the reader's closure (no attribute holds it), and each window
is a fresh copy, never a view of the frame.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

Window = tuple[int, int, int, int]  # rows [r0, r1), columns [c0, c1) of the frame


class Camera:
    """One NHWC frame behind `read(r0, r1, c0, c1)`; `windows()` lists what was read, in order."""

    read: Callable[[int, int, int, int], np.ndarray]
    windows: Callable[[], list[Window]]

    def __init__(self, frame: np.ndarray) -> None:
        frame = np.array(frame)
        frame.flags.writeable = False
        seen: list[Window] = []
        _, h, w, _ = frame.shape

        def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
            """A copy of rows [r0, r1), columns [c0, c1) of the frame; the sensor has nothing
            outside it (padding is the reader's job)."""
            r0, r1, c0, c1 = (int(v) for v in (r0, r1, c0, c1))
            if not (0 <= r0 < r1 <= h and 0 <= c0 < c1 <= w):
                raise ValueError(f"the camera has rows 0..{h} and columns 0..{w}: cannot read rows {r0}..{r1}, "
                                 f"columns {c0}..{c1} (pad outside the frame yourself)")
            seen.append((r0, r1, c0, c1))
            return frame[:, r0:r1, c0:c1].copy()

        self.read, self.windows = read, lambda: list(seen)
        self.shape, self.dtype = frame.shape, frame.dtype
        self.__reduce__ = lambda: (Camera, (frame,))  # sent to the grader's worker as a fresh camera

    def __reduce__(self):  # replaced per instance in __init__
        raise TypeError("a Camera is pickled through its instance's __reduce__")
