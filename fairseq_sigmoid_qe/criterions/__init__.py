from . import nce_dominant  # noqa: F401
