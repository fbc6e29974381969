"""Parsing of the human units a scenario is written in: bandwidth, delay, loss."""
from __future__ import annotations

import re

_BANDWIDTH = re.compile(r"^\s*(?P<num>[0-9]*\.?[0-9]+)\s*(?P<unit>[kKmMgGtT]?)(?:bps|bit/s|b/s)?\s*$")
_SCALE = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_DELAY = re.compile(r"^\s*(?P<num>[0-9]*\.?[0-9]+)\s*(?P<unit>us|ms|s)\s*$")
_DELAY_SCALE = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def parse_bandwidth(value: object) -> int:
    """'100Mbps', '1 Gbps', '80M', 1e9 -> bits per second (a positive int)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a bandwidth like '100Mbps', got {value!r}")
    if isinstance(value, (int, float)):
        bps = float(value)
    elif isinstance(value, str) and (m := _BANDWIDTH.match(value)):
        bps = float(m["num"]) * _SCALE[m["unit"].lower()]
    else:
        raise ValueError(f"expected a bandwidth like '100Mbps' or '1Gbps', got {value!r}")
    if bps <= 0:
        raise ValueError(f"bandwidth must be positive, got {value!r}")
    return int(bps)


def parse_delay(value: object) -> float:
    """'5ms', '250us', 0.5 (ms) -> milliseconds (>= 0)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a delay like '5ms', got {value!r}")
    if isinstance(value, (int, float)):
        ms = float(value)
    elif isinstance(value, str) and (m := _DELAY.match(value)):
        ms = float(m["num"]) * _DELAY_SCALE[m["unit"]]
    else:
        raise ValueError(f"expected a delay like '5ms', got {value!r}")
    if ms < 0:
        raise ValueError(f"delay must not be negative, got {value!r}")
    return ms


def parse_loss(value: object) -> float:
    """'0.1%', 0.1 -> percent in [0, 100]."""
    if isinstance(value, bool):
        raise ValueError(f"expected a loss like '0.1%', got {value!r}")
    if isinstance(value, str):
        text = value.strip().removesuffix("%")
        try:
            pct = float(text)
        except ValueError:
            raise ValueError(f"expected a loss like '0.1%', got {value!r}") from None
    elif isinstance(value, (int, float)):
        pct = float(value)
    else:
        raise ValueError(f"expected a loss like '0.1%', got {value!r}")
    if not 0 <= pct <= 100:
        raise ValueError(f"loss must be between 0% and 100%, got {value!r}")
    return pct


def format_bandwidth(bps: int) -> str:
    for unit, scale in (("Gbps", 10**9), ("Mbps", 10**6), ("kbps", 10**3)):
        if bps >= scale:
            number = bps / scale
            return f"{number:g}{unit}"
    return f"{bps}bps"
