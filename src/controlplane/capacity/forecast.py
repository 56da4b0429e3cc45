"""Days until full: a least-squares line through the daily allocated RAM of the last 30
days, extended until it meets the capacity."""

from __future__ import annotations

from datetime import date


def days_until_full(points: list[tuple[date, float]], capacity: float, today: date) -> float | None:
    """None when there is too little history (fewer than two days) or no growth.

    0 when already full. The days are counted from `today`, from the line's value today
    (so a noisy last sample does not jump the estimate).
    """
    if len({d for d, _ in points}) < 2:
        return None
    xs = [float((d - today).days) for d, _ in points]
    ys = [value for _, value in points]
    n = len(points)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    now = mean_y - slope * mean_x  # the line's value at x = 0 (today)
    if now >= capacity:
        return 0.0
    if slope <= 0:
        return None
    return round((capacity - now) / slope, 1)
