from . import (
    deltalm,  # noqa: F401
    sigmoid_head_transformer,  # noqa: F401
)
