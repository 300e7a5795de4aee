"""The studio: server-rendered pages, their static files, offline API docs and HTTP hardening."""
