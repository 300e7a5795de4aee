"""Use cases: every entry point (HTTP, gateway, CLI, worker) goes through a service."""
