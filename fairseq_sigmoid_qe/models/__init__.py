from . import sigmoid_head_transformer  # noqa: F401
from . import deltalm  # noqa: F401
