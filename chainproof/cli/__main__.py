"""``python -m chainproof.cli``: the same as the ``chainproof`` console script."""

from chainproof.cli import app

app()
