"""Simulate a training run killed right after its first per-epoch checkpoint (for resume tests)."""
import pytest

from mcunet_lite import train


def kill_after_first_checkpoint(monkeypatch, run) -> None:
    """Call `run()` with `train.save_checkpoint` (every trainer's, through `train.run_epochs`) raising
    KeyboardInterrupt once it has written its first checkpoint, as a run killed between epochs 1
    and 2; restored after."""
    save = train.save_checkpoint

    def killed(*args, **kwargs):
        save(*args, **kwargs)
        raise KeyboardInterrupt
    monkeypatch.setattr(train, "save_checkpoint", killed)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.setattr(train, "save_checkpoint", save)
