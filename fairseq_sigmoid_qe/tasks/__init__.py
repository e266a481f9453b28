from . import translation_qe  # noqa: F401
