"""capstone's FastAPI service: the package's functions over HTTP (see service.app)."""
