"""Reelforge: a self-hosted video generation service speaking the OpenAI Videos protocol."""


def __getattr__(name: str) -> str:
    # Read from the installed metadata on first use only: importlib.metadata is a noticeable
    # share of the CLI's start-up, and nothing but `__version__` needs it.
    if name == "__version__":
        from importlib.metadata import version

        return version("reelforge")
    raise AttributeError(name)
