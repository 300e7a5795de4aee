"""Job engine: the reconcile loop that drives videos through their lifecycle."""
