"""Reelforge: a self-hosted video generation service."""
