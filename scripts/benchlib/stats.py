"""Statistics and the number formats of the BENCHMARKS.md tables.

The tables show rounded figures and some figures are computed from rounded ones (a rate
with one decimal, times a batch size); `r1`, `r2` round the way the figures were always
rounded, so the same measurements print the same numbers.
"""
import math


def median(values):
    """The middle value, or the mean of the two middle values."""
    ordered = sorted(float(v) for v in values)
    if not ordered:
        return 0.0
    n = len(ordered)
    return ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def mean(values, default=0.0):
    values = list(values)
    return sum(values) / len(values) if values else default


def percentile_nearest_rank(values, p):
    """The nearest-rank percentile (p in 0..100): a value that occurred; nan when empty."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100 * len(s) + 0.5)) - 1))
    return s[k]


def percentile_linear(values, q):
    """Linear interpolation between the closest ranks (q in 0..1; numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def per(total, count, scale=1.0):
    """total * scale / count, 0 when count is 0."""
    return total * scale / count if count else 0.0


def r1(x):
    return float(f"{x:.1f}")


def r2(x):
    return float(f"{x:.2f}")


def ratio(a, b, digits=2):
    """a / b as text with `digits` decimals (0 when b is 0)."""
    return f"{(a / b if b > 0 else 0):.{digits}f}"


def ratio_shown(a, b):
    """a / b with two decimals, or three when two would show 0.00."""
    text = ratio(a, b)
    return text if text != "0.00" else ratio(a, b, 3)


def verdict(shown_ratio, aim):
    """'met' or '**missed**' for a ratio as shown against its aim."""
    return "met" if float(shown_ratio) >= aim else "**missed**"


def num(x):
    """Rounded to a whole number with thousands separators: 1,234,567."""
    return f"{float(x):,.0f}"


def joined(values, digits=0):
    """Every run's figure, for the notes: '48998, 47120, 45496'."""
    return ", ".join(f"{float(v):.{digits}f}" for v in values)


def mib(kb):
    return f"{float(kb) / 1024:.1f} MiB"


def ms_from_us(us):
    return f"{float(us) / 1000:.2f} ms"


def ms_or_s(milliseconds):
    """Freshness: whole ms below a second, else seconds with two decimals."""
    if milliseconds in ("inf", "nan") or (isinstance(milliseconds, float) and not math.isfinite(milliseconds)):
        return "not visible within 60 s"
    m = float(milliseconds)
    return f"{m / 1000:.2f} s" if m >= 1000 else f"{int(m)} ms"
