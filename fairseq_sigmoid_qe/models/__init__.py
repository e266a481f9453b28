from . import sigmoid_head_transformer  # noqa: F401
