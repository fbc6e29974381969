"""The API's request bodies: strict, finite, no unknown fields; bounds from `egovlab.params`."""
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from egovlab import params
from egovlab.inventory.errors import EgovlabError
from egovlab.topology import faults

PREFIX = f"^{params.PREFIX_PATTERN}$"
SCENARIO_NAME = f"^{params.SCENARIO_NAME_PATTERN}$"
ScenarioName = Annotated[str, Field(pattern=SCENARIO_NAME, description="a stored scenario's name")]


class Body(BaseModel):
    """Unknown fields, non-finite numbers (Python's JSON reader takes NaN) and values of another
    type (`false` for a count, `"10"` for a number) are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


def _horizon(text: str) -> str:
    try:
        params.parse_horizon(text, "horizon")
    except EgovlabError as exc:
        raise ValueError(str(exc).removeprefix("horizon: ")) from None
    return text


class ScenarioUpload(Body):
    name: ScenarioName
    yaml: str = Field(max_length=2_000_000, description="the scenario file's text (YAML)")


class LabUp(Body):
    scenario: ScenarioName
    hosts_per_site: int | None = Field(default=None, **params.HOSTS_PER_SITE.field())
    ovs_shards: int = Field(default=1, **params.OVS_SHARDS.field(),
                            description="Open vSwitch daemons to spread the switches over")
    sdn: bool = Field(default=True, description="egovlab's controller (zone policy) or standalone switches")


class FaultRequest(Body):
    action: Literal[faults.ACTIONS]  # type: ignore[valid-type]
    target: str = Field(min_length=1, max_length=120, description="a link, switch, site or data centre")


class SimulationRequest(Body):
    scenario: ScenarioName
    replications: int = Field(default=10, **params.REPLICATIONS.field())
    horizon: Annotated[str, Field(max_length=20), AfterValidator(_horizon)] = Field(
        default="365d", description="a duration like '365d', '24h' or '90m'")
    peak_minutes: float = Field(default=60, **params.PEAK_MINUTES.field())
    seed: int = Field(default=1, **params.SEED.field())


class DrillRequest(Body):
    scenario: ScenarioName
    fail: str = Field(min_length=1, max_length=80, description="the data centre to take dark")
    replication: Literal["sync", "async"] | None = None
    seconds: float = Field(default=40, **params.DRILL_SECONDS.field())
    rate: float = Field(default=10, **params.DRILL_RATE.field())
    failback: bool = Field(default=False, description="then fail back to the provincial DC and report it too")
    prefix: str = Field(default="dr", pattern=PREFIX)
    hosts_per_site: int | None = Field(default=None, **params.HOSTS_PER_SITE.field())


class PingRequest(Body):
    destination: str = Field(min_length=1, max_length=80, description="an IP address or a device of the lab")
    source: str = Field(default="", max_length=45)
    ttl: int = Field(default=255, ge=1, le=255)
    timeout: float = Field(default=2, ge=0.1, le=10)
    size: int = Field(default=100, ge=0, le=9000)
    count: int = Field(default=5, ge=1, le=20)
    vrf: str = Field(default="", max_length=40, description="accepted for NAPALM's sake; the lab has no VRFs")


class TracerouteRequest(Body):
    destination: str = Field(min_length=1, max_length=80)
    source: str = Field(default="", max_length=45)
    ttl: int = Field(default=30, ge=1, le=64)
    timeout: float = Field(default=2, ge=0.1, le=10)
    vrf: str = Field(default="", max_length=40)


class PolicyChange(Body):
    policy: str = Field(min_length=1, max_length=1_000_000,
                        description="flows in the scenario's policy format (YAML): a list, {allow: [...]} "
                                    "or {policy: {allow: [...]}}")
    mode: Literal["merge", "replace"] = "merge"
    device: str | None = Field(default=None, max_length=80, description="compare: only this switch's rules")


class TestRun(Body):
    scenario: ScenarioName
    suite: str = Field(min_length=1, max_length=1_000_000, description="the suite file's text (YAML), as for "
                                                                       "`egovlab test`")
    prefix: str = Field(default="et", pattern=PREFIX, description="the lab up under it, or one brought up for the run")
    only: list[str] = Field(default=[], max_length=100, description="run only these tests")
