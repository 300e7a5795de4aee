"""Rendered assets (video, thumbnail, spritesheet) by video id: in memory or files on disk."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from reelforge.emulator.render import RenderedAssets
from reelforge.emulator.store import Variant


class AssetStore:
    """Finished videos, thumbnails and spritesheets: in memory, or files in a directory."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._memory: dict[str, dict[Variant, bytes]] = {}
        self._lock = threading.Lock()
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def _path(self, video_id: str, variant: Variant) -> Path:
        assert self.directory is not None
        return self.directory / video_id / f"{variant.value}.{variant.extension}"

    def put(self, video_id: str, assets: RenderedAssets) -> None:
        by_variant = {
            Variant.VIDEO: assets.video,
            Variant.THUMBNAIL: assets.thumbnail,
            Variant.SPRITESHEET: assets.spritesheet,
        }
        if self.directory is None:
            with self._lock:
                self._memory[video_id] = by_variant
            return
        for variant, data in by_variant.items():
            path = self._path(video_id, variant)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(path.suffix + ".part")
            temporary.write_bytes(data)
            os.replace(temporary, path)  # readers never see half a file

    def get(self, video_id: str, variant: Variant) -> bytes | None:
        if self.directory is None:
            with self._lock:
                return self._memory.get(video_id, {}).get(variant)
        try:
            return self._path(video_id, variant).read_bytes()
        except FileNotFoundError:
            return None

    def has(self, video_id: str) -> bool:
        """Every variant of `video_id` is stored."""
        if self.directory is None:
            with self._lock:
                return len(self._memory.get(video_id, {})) == len(Variant)
        return all(self._path(video_id, variant).is_file() for variant in Variant)

    def delete(self, video_id: str) -> None:
        if self.directory is None:
            with self._lock:
                self._memory.pop(video_id, None)
            return
        shutil.rmtree(self.directory / video_id, ignore_errors=True)

    def clear(self) -> None:
        if self.directory is None:
            with self._lock:
                self._memory.clear()
            return
        for child in self.directory.iterdir():
            if child.is_dir() and child.name.startswith("video_"):
                shutil.rmtree(child, ignore_errors=True)

    def bytes_held(self) -> int:
        with self._lock:
            return sum(len(data) for assets in self._memory.values() for data in assets.values())
