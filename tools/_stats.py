"""Small statistics helpers (stdlib only; numpy is not a dependency)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def quantile_linear(values: Sequence[float], q: float) -> float:
    """Quantile with linear interpolation between order statistics.

    Same as numpy's default (``method="linear"``, Hyndman & Fan type 7): with the sorted sample
    ``x`` of size n, ``h = (n - 1) * q``, result = ``x[floor(h)] + (h - floor(h)) * (x[floor(h)+1] - x[floor(h)])``.
    Raises ValueError for an empty sample or ``q`` outside [0, 1].
    """
    if not values:
        raise ValueError("quantile of an empty sample")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile level q={q} outside [0, 1]")
    xs = sorted(values)
    h = (len(xs) - 1) * q
    lo = math.floor(h)
    if lo >= len(xs) - 1:
        return xs[-1]
    return xs[lo] + (h - lo) * (xs[lo + 1] - xs[lo])


def median(values: Sequence[float]) -> float:
    """Median (average of the two middle values for an even count). ValueError when empty."""
    return quantile_linear(values, 0.5)


def simple_returns(closes: Sequence[float]) -> list[float]:
    """``r_t = close_t / close_{t-1} - 1`` for consecutive closes (length n - 1)."""
    return [closes[i] / closes[i - 1] - 1.0 for i in range(1, len(closes))]


def max_drawdown(closes: Sequence[float]) -> tuple[float, int, int]:
    """``min_t(close_t / max_{s<=t} close_s - 1)`` (<= 0) with the indices of the peak and the trough."""
    peak_i, best, best_peak, best_trough = 0, 0.0, 0, 0
    for i, c in enumerate(closes):
        if c > closes[peak_i]:
            peak_i = i
        dd = c / closes[peak_i] - 1.0
        if dd < best:
            best, best_peak, best_trough = dd, peak_i, i
    return best, best_peak, best_trough
