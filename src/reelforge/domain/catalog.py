"""The capability catalog: each provider's models, sizes, durations, features and prices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from reelforge.domain.errors import InputError


class Feature(StrEnum):
    IMAGE_INPUT = "image_input"
    REMIX = "remix"
    EDIT = "edit"
    EXTEND = "extend"


class Quality(StrEnum):
    """The guide's `quality`: which model tier a request gets when it names no model."""

    STANDARD = "standard"
    HIGH = "high"


class Tier(StrEnum):
    """Resolution tier, the unit prices are quoted in."""

    P720 = "720p"
    P1024 = "1024p"
    P1080 = "1080p"


SIZE_TIERS: Mapping[str, Tier] = {
    "720x1280": Tier.P720,
    "1280x720": Tier.P720,
    "1024x1792": Tier.P1024,
    "1792x1024": Tier.P1024,
    "1080x1920": Tier.P1080,
    "1920x1080": Tier.P1080,
}

# Extensions add segments of these lengths; the stitched total may not pass MAX_EXTENDED_SECONDS.
EXTENSION_SECONDS: tuple[str, ...] = ("4", "8", "12", "16", "20")
MAX_EXTENSIONS = 6
MAX_EXTENDED_SECONDS = 120


class CatalogError(InputError):
    """A request names something the catalog lacks; names the field and what is allowed."""

    def __init__(self, param: str, value: object, allowed: Iterable[str]) -> None:
        self.param = param
        self.value = value
        self.allowed = tuple(allowed)
        super().__init__(
            param, f"Invalid value: {value!r}. Supported values are: {_quoted_list(self.allowed)}."
        )
        # The protocol's wording, which the emulator and the /v1 gateway answer with verbatim.
        self.args = (self.message,)


def _quoted_list(values: tuple[str, ...]) -> str:
    quoted = [f"'{value}'" for value in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


@dataclass(frozen=True)
class ModelSpec:
    """What one model of one provider can make, and what a second of it costs."""

    name: str
    sizes: tuple[str, ...]
    seconds: tuple[str, ...]
    default_size: str
    default_seconds: str
    features: frozenset[Feature]
    price_per_second: Mapping[Tier, Decimal]
    quality: Quality = Quality.STANDARD
    description: str = ""

    def tier(self, size: str) -> Tier:
        return SIZE_TIERS[size]

    def price(self, size: str, seconds: str | int) -> Decimal:
        """Cost in USD of `seconds` of video at `size`."""
        return self.price_per_second[self.tier(size)] * int(seconds)

    def supports(self, feature: Feature) -> bool:
        return feature in self.features


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    models: Mapping[str, ModelSpec]
    default_model: str
    label: str = ""
    aliases: Mapping[str, str] = field(default_factory=dict)

    def model(self, name: str | None) -> ModelSpec:
        """The model called `name` (or the default); raises CatalogError naming the choices."""
        wanted = name or self.default_model
        spec = self.models.get(self.aliases.get(wanted, wanted))
        if spec is None:
            raise CatalogError("model", wanted, self.model_names())
        return spec

    def model_names(self) -> tuple[str, ...]:
        return (*self.models, *self.aliases)

    def model_of_quality(self, model: str | None, quality: str | None) -> ModelSpec:
        """The model named, or else the default model of the quality asked for; a model and a
        quality that disagree are refused, naming `quality`."""
        if quality is None:
            return self.model(model)
        if quality not in tuple(Quality):
            raise CatalogError("quality", quality, tuple(Quality))
        if model:
            spec = self.model(model)
            if spec.quality != quality:
                raise InputError(
                    "quality",
                    f"{spec.name} is a {spec.quality.value} model; ask for quality "
                    f"'{spec.quality.value}', or leave out the model or the quality",
                )
            return spec
        default = self.model(None)
        if default.quality == quality:
            return default
        tiered = next((spec for spec in self.models.values() if spec.quality == quality), None)
        if tiered is None:
            offered = sorted({spec.quality.value for spec in self.models.values()})
            raise CatalogError("quality", quality, offered)
        return tiered

    def resolve(
        self,
        model: str | None,
        size: str | None,
        seconds: str | int | None,
        quality: str | None = None,
    ) -> tuple[ModelSpec, str, str]:
        """Fill defaults and check a (model or quality, size, seconds) combination."""
        spec = self.model_of_quality(model, quality)
        chosen_size = size or spec.default_size
        if chosen_size not in spec.sizes:
            raise CatalogError("size", chosen_size, spec.sizes)
        chosen_seconds = str(seconds) if seconds is not None else spec.default_seconds
        if chosen_seconds not in spec.seconds:
            raise CatalogError("seconds", chosen_seconds, spec.seconds)
        return spec, chosen_size, chosen_seconds


_ALL_FEATURES = frozenset(Feature)
_SECONDS = ("4", "8", "12", "16", "20")
_720 = ("720x1280", "1280x720")

SORA_2 = ModelSpec(
    name="sora-2",
    sizes=_720,
    seconds=_SECONDS,
    default_size="720x1280",
    default_seconds="4",
    features=_ALL_FEATURES,
    price_per_second={Tier.P720: Decimal("0.10")},
    quality=Quality.STANDARD,
    description="Fast iteration, 720p.",
)
SORA_2_PRO = ModelSpec(
    name="sora-2-pro",
    sizes=(*_720, "1024x1792", "1792x1024", "1080x1920", "1920x1080"),
    seconds=_SECONDS,
    default_size="720x1280",
    default_seconds="4",
    features=_ALL_FEATURES,
    price_per_second={
        Tier.P720: Decimal("0.30"),
        Tier.P1024: Decimal("0.50"),
        Tier.P1080: Decimal("0.70"),
    },
    quality=Quality.HIGH,
    description="Higher quality, up to 1080p.",
)

# Dated snapshots price and behave as their family.
SORA_ALIASES: Mapping[str, str] = {
    "sora-2-2025-10-06": "sora-2",
    "sora-2-2025-12-08": "sora-2",
    "sora-2-pro-2025-10-06": "sora-2-pro",
}

_SORA_MODELS = {spec.name: spec for spec in (SORA_2, SORA_2_PRO)}

# The live vendors' models are facts about those vendors (docs/providers.md cites each one).
from reelforge.domain.live_models import FAL, VEO  # noqa: E402  (they build on the classes above)

PROVIDERS: Mapping[str, ProviderSpec] = {
    "emulator": ProviderSpec(
        name="emulator",
        label="Built-in emulator",
        models=_SORA_MODELS,
        default_model="sora-2",
        aliases=SORA_ALIASES,
    ),
    "openai": ProviderSpec(
        name="openai",
        label="OpenAI-compatible endpoint",
        models=_SORA_MODELS,
        default_model="sora-2",
        aliases=SORA_ALIASES,
    ),
    "fal": FAL,
    "veo": VEO,
}


def provider(name: str) -> ProviderSpec:
    """The catalog entry for a provider; raises CatalogError naming the known ones."""
    spec = PROVIDERS.get(name)
    if spec is None:
        raise CatalogError("provider", name, tuple(PROVIDERS))
    return spec


def quality_of(provider_name: str, model: str) -> Quality | None:
    """The quality tier of a provider's model, if the catalog still has it."""
    spec = PROVIDERS.get(provider_name)
    found = spec.models.get(spec.aliases.get(model, model)) if spec else None
    return found.quality if found else None
