"""Test-only building blocks that fixtures hand to tests (importable as `tests.support`)."""
