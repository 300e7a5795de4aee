"""HTTP interface: the app factory and the FastAPI routers."""
