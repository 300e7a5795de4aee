"""Routing by model name: which of the configured providers makes a video of a given model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from reelforge.domain import catalog
from reelforge.domain.catalog import CatalogError, ModelSpec, ProviderSpec


@dataclass(frozen=True)
class Routes:
    """The configured providers' catalogs; `default` takes requests that name no model.

    A model name belongs to the first configured provider that lists it (the default first),
    so `veo-3.1` goes to `veo` and `fal-ai/veo3.1` to `fal` when both are configured.
    """

    specs: Mapping[str, ProviderSpec]
    default: str

    @classmethod
    def of(cls, names: Iterable[str], default: str | None = None) -> Routes:
        ordered = list(dict.fromkeys(names))
        if not ordered:
            raise ValueError("at least one provider must be configured")
        chosen = default or ordered[0]
        if chosen not in ordered:
            ordered.insert(0, chosen)
        specs = {name: catalog.provider(name) for name in [chosen, *ordered]}
        return cls(specs=specs, default=chosen)

    @property
    def default_spec(self) -> ProviderSpec:
        return self.specs[self.default]

    def spec_for(self, model: str | None) -> ProviderSpec:
        """The provider that makes `model` (the default when None), or a CatalogError naming
        every model the configured providers offer."""
        if model is None:
            return self.default_spec
        for spec in self.specs.values():
            if model in spec.models or model in spec.aliases:
                return spec
        raise CatalogError("model", model, self.model_names())

    def provider(self, name: str) -> ProviderSpec:
        """A configured provider's catalog, by the name a video recorded."""
        spec = self.specs.get(name)
        if spec is None:
            raise CatalogError("provider", name, tuple(self.specs))
        return spec

    def model_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for spec in self.specs.values() for n in spec.model_names()))

    def model(self, name: str) -> ModelSpec:
        return self.spec_for(name).model(name)
