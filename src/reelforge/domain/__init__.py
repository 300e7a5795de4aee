"""Pure types and rules: video states, the capability catalog, pricing, validation."""
