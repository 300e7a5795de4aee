"""Reelforge: a self-hosted video generation service speaking the OpenAI Videos protocol."""

from importlib.metadata import version

__version__ = version("reelforge")
