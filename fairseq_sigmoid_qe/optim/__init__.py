from . import sparse_adam  # noqa: F401
