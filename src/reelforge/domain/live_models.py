"""The live vendors' catalog entries: fal's video models and Google's Veo, as their pages state.

Only what docs/providers.md cites is here: each model's durations, shapes and price per second.
A size picks the aspect ratio the vendor is asked for (and the resolution where the model takes
one); models that take only an aspect ratio choose their own pixel size.
"""

from __future__ import annotations

from decimal import Decimal

from reelforge.domain.catalog import Feature, ModelSpec, ProviderSpec, Tier

_LANDSCAPE_720 = ("1280x720", "720x1280")
_ANY_1080 = (*_LANDSCAPE_720, "1920x1080", "1080x1920")
_TEXT_ONLY: frozenset[Feature] = frozenset()
_IMAGE = frozenset({Feature.IMAGE_INPUT})


def _flat(price: str, *tiers: Tier) -> dict[Tier, Decimal]:
    return {tier: Decimal(price) for tier in tiers}


# fal: model names are fal's own endpoint ids, so a fal user recognises them and they never
# collide with another provider's names (routing is by model name).
FAL_VEO_3_1 = ModelSpec(
    name="fal-ai/veo3.1",
    sizes=_ANY_1080,
    seconds=("4", "6", "8"),
    default_size="1280x720",
    default_seconds="8",
    features=_IMAGE,
    # With audio, which the model generates by default.
    price_per_second=_flat("0.40", Tier.P720, Tier.P1080),
    description="Google Veo 3.1 on fal, with sound; 720p or 1080p.",
)
FAL_VEO_3_FAST = ModelSpec(
    name="fal-ai/veo3/fast",
    sizes=_LANDSCAPE_720,
    seconds=("4", "6", "8"),
    default_size="1280x720",
    default_seconds="8",
    features=_TEXT_ONLY,
    price_per_second=_flat("0.15", Tier.P720),
    description="Google Veo 3 Fast on fal, with sound.",
)
FAL_KLING_2_5_TURBO_PRO = ModelSpec(
    name="fal-ai/kling-video/v2.5-turbo/pro/text-to-video",
    sizes=_LANDSCAPE_720,
    seconds=("5", "10"),
    default_size="1280x720",
    default_seconds="5",
    features=_IMAGE,
    # $0.35 for 5 s and $0.07 for each second more: $0.07 a second either way.
    price_per_second=_flat("0.07", Tier.P720),
    description="Kling 2.5 Turbo Pro on fal.",
)
FAL_SEEDANCE_1_PRO_FAST = ModelSpec(
    name="fal-ai/bytedance/seedance/v1/pro/fast/text-to-video",
    sizes=_ANY_1080,
    seconds=tuple(str(n) for n in range(2, 13)),
    default_size="1280x720",
    default_seconds="5",
    features=_TEXT_ONLY,
    # $1 per million video tokens, tokens = width * height * 24 fps * seconds / 1024.
    price_per_second={Tier.P720: Decimal("0.0216"), Tier.P1080: Decimal("0.0486")},
    description="ByteDance Seedance 1.0 Pro Fast on fal; 720p or 1080p.",
)
FAL_LTX_2_3 = ModelSpec(
    name="fal-ai/ltx-2.3/text-to-video",
    sizes=("1920x1080", "1080x1920"),
    seconds=("6", "8", "10"),
    default_size="1920x1080",
    default_seconds="6",
    features=_TEXT_ONLY,
    price_per_second=_flat("0.08", Tier.P1080),
    description="Lightricks LTX 2.3 Pro on fal, 1080p.",
)

FAL = ProviderSpec(
    name="fal",
    label="fal",
    models={
        spec.name: spec
        for spec in (
            FAL_VEO_3_1,
            FAL_VEO_3_FAST,
            FAL_KLING_2_5_TURBO_PRO,
            FAL_SEEDANCE_1_PRO_FAST,
            FAL_LTX_2_3,
        )
    },
    default_model=FAL_KLING_2_5_TURBO_PRO.name,
)

VEO_3_1 = ModelSpec(
    name="veo-3.1",
    sizes=_ANY_1080,
    seconds=("4", "6", "8"),
    default_size="1280x720",
    default_seconds="8",
    features=_IMAGE,
    price_per_second=_flat("0.40", Tier.P720, Tier.P1080),
    description="Google Veo 3.1 through the Gemini API, with sound.",
)
VEO_3_1_FAST = ModelSpec(
    name="veo-3.1-fast",
    sizes=_ANY_1080,
    seconds=("4", "6", "8"),
    default_size="1280x720",
    default_seconds="8",
    features=_IMAGE,
    price_per_second=_flat("0.15", Tier.P720, Tier.P1080),
    description="Google Veo 3.1 Fast through the Gemini API, with sound.",
)

VEO = ProviderSpec(
    name="veo",
    label="Google Veo (Gemini API)",
    models={spec.name: spec for spec in (VEO_3_1, VEO_3_1_FAST)},
    default_model=VEO_3_1.name,
)
