"""A camera for Lab 03's patch executor: it hands out windows of one int8 frame and notes each one.

Patch-based inference (MCUNetV2 section 3.1) never holds the whole input: each patch reads its
own input window from the sensor (or from Flash), so the grader can tell patch-based execution
from layer-by-layer execution cut afterwards by what was read. Reading is the camera's only door
to the pixels: the frame lives in the reader's closure (no attribute holds it), and each window
is a fresh copy, never a view of the frame.

Under the built-in grader the frame never enters the student's process at all: a `Camera` sent to
the worker arrives as a `RemoteCamera`, whose reads are requests the grader serves from the
camera it kept, so the record of windows the grade depends on is made where student code cannot
reach it (`mcunet_lite.kit.sandbox.request`).
"""
from __future__ import annotations

from typing import Any, Callable

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

    def __reduce__(self):
        """Sent to the grader's worker as a `RemoteCamera`: the shape and type, not the pixels."""
        return RemoteCamera, (self.shape, self.dtype.str)

    def serve(self, message: Any) -> Any:
        """The grader's answer to a worker's `RemoteCamera.read`: the window, or ("error", why)."""
        try:
            return self.read(*message["read"])
        except (TypeError, ValueError, KeyError, IndexError) as e:
            return ("error", str(e)[:300])


class RemoteCamera:
    """The worker's side of a grader-held `Camera`: each read is a request to the grader."""

    def __init__(self, shape: tuple[int, ...], dtype: str) -> None:
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Rows [r0, r1), columns [c0, c1) of the frame, from the grader (which notes the window)."""
        from .sandbox import request
        answer = request({"read": [int(r0), int(r1), int(c0), int(c1)]})
        if isinstance(answer, tuple):
            raise ValueError(answer[1])
        return answer

    def windows(self) -> list[Window]:
        """Nothing here: the record of what was read is the grader's."""
        return []
