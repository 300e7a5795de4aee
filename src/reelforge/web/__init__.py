"""Web studio: server-rendered pages."""
