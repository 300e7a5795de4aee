"""The bus: "this changed" notices between Reelforge's parts and processes (hints, never truth)."""

from reelforge.bus.local import LocalBus
from reelforge.bus.notices import Bus, Notice, Observer, Topic
from reelforge.bus.redis import RedisBus

__all__ = ["Bus", "LocalBus", "Notice", "Observer", "RedisBus", "Topic"]
