"""Stop training cleanly on SIGINT or SIGTERM: the loop finishes its update, saves, and exits 0."""

from __future__ import annotations

import signal
import threading


class StopRequest:
    """Context manager: SIGINT/SIGTERM set ``signal_name``, which the training loop checks between updates.

    A second signal while the first is pending raises KeyboardInterrupt at once. Outside the main thread
    (where handlers cannot be installed), or not ``enabled`` (nmt.runtime.process), it does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool = True) -> None:
        self.signal_name: str | None = None
        self.enabled = enabled
        self._old: dict = {}

    def _handle(self, signum: int, frame) -> None:
        if self.signal_name is not None:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> StopRequest:
        if self.enabled and threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)
