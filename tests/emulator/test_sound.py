"""The emulator's soundtrack: AAC in every MP4, the sound of the scene on screen, cut with it."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from numpy.typing import NDArray

from reelforge.emulator.render import FPS, RenderSpec
from reelforge.emulator.scene import scene_from_prompt
from reelforge.emulator.sound import SAMPLE_RATE, bed
from tests.emulator.helpers import cached_render

Audio = NDArray[np.float32]
MEADOW = RenderSpec("a sunny meadow with rolling hills", 1280, 720, 4, seed=7)
RAIN = RenderSpec("the same hills as rain begins to fall", 1280, 720, 4, extends=MEADOW)


def heard(video: bytes) -> tuple[float, Audio]:
    """The audio stream's duration in seconds, and its samples as decoded (AAC's priming and
    padding trimmed, as players do, by the stream's own start and duration)."""
    with av.open(io.BytesIO(video)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        assert stream.codec_context.sample_rate == SAMPLE_RATE
        assert stream.duration is not None
        assert stream.time_base is not None
        samples = np.concatenate([frame.to_ndarray()[0] for frame in container.decode(stream)])
        return float(stream.duration * stream.time_base), samples


def rms(samples: Audio) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def treble(samples: Audio) -> float:
    """The loudness (RMS) of what is above 2 kHz: rain's hiss, birds, crickets."""
    spectrum = np.fft.rfft(samples)
    spectrum[np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE) <= 2000] = 0
    return rms(np.fft.irfft(spectrum, len(samples)).astype(np.float32))


def test_the_video_carries_sound_as_long_as_its_picture() -> None:
    seconds, samples = heard(cached_render(MEADOW).video)

    assert seconds == pytest.approx(4.0, abs=1 / FPS)
    assert len(samples) >= 4 * SAMPLE_RATE
    assert rms(samples) > 0.01  # not silence
    assert np.abs(samples).max() <= 1.0


def test_the_sound_is_the_scenes() -> None:
    meadow = scene_from_prompt("a meadow on a clear day", 3)
    rain = scene_from_prompt("a meadow in the rain", 3)
    space = scene_from_prompt("a space station among the stars", 3)
    seconds = (SAMPLE_RATE, 2 * SAMPLE_RATE)

    assert treble(bed(rain, *seconds)) > 3 * treble(bed(meadow, *seconds))
    assert treble(bed(space, *seconds)) < treble(bed(meadow, *seconds)) / 10
    assert rms(bed(space, *seconds)) > 0.01


def test_a_scenes_sound_depends_on_where_it_is_heard_not_on_how_long() -> None:
    meadow = scene_from_prompt(MEADOW.prompt, MEADOW.seed)
    whole = bed(meadow, 0, 6 * SAMPLE_RATE)

    part = bed(meadow, 2 * SAMPLE_RATE + 123, SAMPLE_RATE)

    np.testing.assert_allclose(
        part, whole[2 * SAMPLE_RATE + 123 : 3 * SAMPLE_RATE + 123], atol=1e-6
    )


def test_an_extension_replays_its_sources_sound_then_follows_its_own_scene() -> None:
    _, source = heard(cached_render(MEADOW).video)
    seconds, extension = heard(cached_render(RAIN).video)

    assert seconds == pytest.approx(8.0, abs=1 / FPS)
    # AAC codes the same samples the same way until the look-ahead reaches the cut at 4 s.
    np.testing.assert_allclose(extension[: 3 * SAMPLE_RATE], source[: 3 * SAMPLE_RATE], atol=1e-4)
    before = extension[2 * SAMPLE_RATE : 4 * SAMPLE_RATE]
    after = extension[5 * SAMPLE_RATE : 7 * SAMPLE_RATE]  # past the 0.75 s cross-fade
    assert treble(after) > 3 * treble(before)  # the rain is heard once it is seen
