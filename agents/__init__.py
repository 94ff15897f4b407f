"""Model access: effort profiles and endpoint settings (``config``), the model providers
(``models``), measured calls and usage (``calls``), structured answers (``structured``), the
retry / circuit-breaker / rate-limit / failover stack, the embedded llama.cpp model and scripted
models for tests. The public names are re-exported by :mod:`chainproof` (``__all__``); importing
this package imports nothing heavy."""

__all__: list[str] = []
