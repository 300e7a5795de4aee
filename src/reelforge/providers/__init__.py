"""Provider adapters: upstream video generators behind one interface."""
