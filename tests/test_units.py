import pytest

from egovlab.inventory.units import format_bandwidth, parse_bandwidth, parse_delay, parse_loss


@pytest.mark.parametrize("text,bps", [("100Mbps", 10**8), ("1Gbps", 10**9), ("80M", 8 * 10**7),
                                      ("1.5 Gbps", 15 * 10**8), ("64k", 64000), (2_000_000, 2_000_000)])
def test_bandwidth(text, bps):
    assert parse_bandwidth(text) == bps


@pytest.mark.parametrize("bad", ["0Mbps", 0, -1, "fast", "", True, None, "10 furlongs"])
def test_bandwidth_rejects(bad):
    with pytest.raises(ValueError):
        parse_bandwidth(bad)


@pytest.mark.parametrize("text,ms", [("5ms", 5.0), ("250us", 0.25), ("1s", 1000.0), (2, 2.0)])
def test_delay(text, ms):
    assert parse_delay(text) == ms


@pytest.mark.parametrize("text,pct", [("0.1%", 0.1), ("100%", 100.0), (0, 0.0)])
def test_loss(text, pct):
    assert parse_loss(text) == pct


@pytest.mark.parametrize("bad", ["-1%", "101%", "lots", [1]])
def test_loss_rejects(bad):
    with pytest.raises(ValueError):
        parse_loss(bad)


def test_format_bandwidth_round_trips():
    for text in ("80Mbps", "1Gbps", "100Mbps", "64kbps"):
        assert format_bandwidth(parse_bandwidth(text)) == text
