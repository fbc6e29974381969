"""A test-suite file: named tests of "cut this, expect that" on a scenario's lab (pydantic schema).

    suite: dongthap-resilience
    stop_on_error: false
    tests:
      - name: a district's primary uplink cut
        level: error                     # or warning: reported, never fails the run
        steps:
          - failover: {link: h-cao-lanh--core-1, max_outage_ms: 50}
          - fault: link-down h-cao-lanh--core-1
          - wait: converged              # or a duration: 2s, 500ms
          - reach: {from: site:h-cao-lanh, to: service:cong-dvc}
          - deny: {from: kind:commune, to: zone:db, ip: both, hosts: any}
          - flap: {link: internet-1, count: 3, interval: 1s}
          - service: cong-dvc            # the deployed portal answers a citizen (Ansible deploys it first)
          - drill: {fail: provincial-dc, max_rto: 60s}   # the backup DC takes over
          - failback: {max_rto: 10s}     # ... and gives it back (a test's baseline also fails back)
          - restore: all                 # or a fault's repair: link-up h-cao-lanh--core-1

Every step is one mapping with one key. Selectors are the policy's (`zone:`, `kind:`, `site:`,
`service:`, `any`), ports its port specs (`tcp/443`, `icmp`; default: the target service's
TCP ports, else ICMP echo). Everything is checked against the scenario and its lab plan before
any lab is built, and every problem is reported at once with its field path (exit 2).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from egovlab.inventory import loader, safe_yaml
from egovlab.inventory.errors import EgovlabError, InputError, Problem, join_path
from egovlab.inventory.loader import pydantic_problems
from egovlab.inventory.schema import Port, Selector
from egovlab.inventory.scenario import Scenario
from egovlab.inventory.validate import selector_problem
from egovlab.services.placement import PORTAL, plan_deployment
from egovlab.topology import faults
from egovlab.topology.model import EmulationPlan

DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m)$")
MAX_WAIT_S = 600.0


def seconds(value: object) -> float:
    """'2s', '500ms', '1m' or a number of seconds, finite, up to ten minutes."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '2s' or '500ms', got {value!r}")
    if isinstance(value, (int, float)):
        out = float(value)
    else:
        m = DURATION.match(str(value).strip())
        if not m:
            raise ValueError(f"expected a duration like '2s' or '500ms', got {value!r}")
        out = float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[m.group(2)]
    if not 0 <= out <= MAX_WAIT_S:
        raise ValueError(f"a duration from 0 to {MAX_WAIT_S:g} s, got {value!r}")
    return out


Duration = Annotated[float, BeforeValidator(seconds)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


def _fault_words(value: object) -> object:
    """'link-down NAME' is the short form of {action: link-down, target: NAME}."""
    if isinstance(value, str):
        action, _, target = value.strip().partition(" ")
        return {"action": action, "target": target.strip()}
    return value


class Fault(Strict):
    action: Literal[faults.ACTIONS]  # type: ignore[valid-type]
    target: str = Field(min_length=1, max_length=120)


class Flap(Strict):
    link: str = Field(min_length=1, max_length=120)
    count: int = Field(default=3, ge=1, le=100)
    interval: Duration = 1.0  # down for this long, then up for this long


class Reach(Strict):
    """Every (`hosts: all`) or at least one (`any`) pair of a host of `from` and a host of `to`
    gets through on each port, for each IP version both ends have."""

    source: Selector = Field(alias="from")
    to: Selector
    ports: list[Port] | None = None
    ip: Literal[4, 6, "both"] = "both"
    hosts: Literal["all", "any"] = "all"


class Failover(Strict):
    """Cut `link` under a 1 ms probe (from a host behind it to a data-centre server, or the given
    hosts) and bound the longest outage; the link is repaired afterwards."""

    link: str = Field(min_length=1, max_length=120)
    max_outage_ms: float = Field(ge=0, le=60_000)
    source: str | None = Field(default=None, alias="from", max_length=80)
    to: str | None = Field(default=None, max_length=80)
    port: Port | None = None  # the probe's UDP port (default: one the policy lets through, if any)
    ip: Literal[4, 6] = 4


class Service(Strict):
    """The deployed service answers its health check over HTTPS, through the portal's address,
    from a citizen's host on the Internet, within `within` (the services are deployed with
    Ansible before the first `service` or `drill` step of a run)."""

    name: str = Field(default=PORTAL, min_length=1, max_length=80)
    within: Duration = 10.0


class Drill(Strict):
    """The failover drill on the deployed services: citizens keep submitting, `fail` goes dark,
    the standby is promoted and takes the portal's addresses. RTO and RPO bounded by `max_rto` /
    `max_rpo` (default: the scenario's targets). Until a `failback` step (or the next test's
    baseline) the backup DC serves: a second drill in the same test needs a failback first."""

    fail: str = Field(min_length=1, max_length=80)
    replication: Literal["sync", "async"] | None = None  # default: the scenario's
    seconds: float = Field(default=30.0, ge=15, le=600)
    rate: float = Field(default=10.0, ge=1, le=50)
    max_rto: Duration | None = None
    max_rpo: Duration | None = None


class Failback(Strict):
    """Service back to the provincial DC after a drill (earlier in the same test): its database
    re-synchronised as a standby, then switched back with citizens submitting; RTO and RPO
    measured as the drill's, bounded by `max_rto` / `max_rpo` (default: the scenario's targets)."""

    seconds: float = Field(default=30.0, ge=15, le=600)
    rate: float = Field(default=10.0, ge=1, le=50)
    max_rto: Duration | None = None
    max_rpo: Duration | None = None


def _wait(value: object) -> object:
    return value if value == "converged" else seconds(value)


class FaultStep(Strict):
    fault: Annotated[Fault, BeforeValidator(_fault_words)]


class FlapStep(Strict):
    flap: Flap


class WaitStep(Strict):
    wait: Annotated[Literal["converged"] | float, BeforeValidator(_wait)]


class ReachStep(Strict):
    reach: Reach


class DenyStep(Strict):
    deny: Reach


class FailoverStep(Strict):
    failover: Failover


class RestoreStep(Strict):
    restore: Annotated[Literal["all"] | Fault, BeforeValidator(lambda v: v if v == "all" else _fault_words(v))]


class ServiceStep(Strict):
    service: Annotated[Service, BeforeValidator(lambda v: {"name": v} if isinstance(v, str) else v)]


class DrillStep(Strict):
    drill: Drill


class FailbackStep(Strict):
    failback: Annotated[Failback, BeforeValidator(lambda v: {} if v is None else v)]


STEP_KINDS = {"fault": FaultStep, "flap": FlapStep, "wait": WaitStep, "reach": ReachStep, "deny": DenyStep,
              "failover": FailoverStep, "service": ServiceStep, "drill": DrillStep, "failback": FailbackStep,
              "restore": RestoreStep}
Step = Union[tuple(STEP_KINDS.values())]  # type: ignore[valid-type]


def _one_step(value: object) -> object:
    """A step is a mapping of one known key: say which when it is not."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ValueError(f"a step is a mapping of one key ({', '.join(STEP_KINDS)}), got "
                         f"{value!r:.60}")
    (key,) = value
    if key not in STEP_KINDS:
        raise ValueError(f"unknown step '{key}' (expected one of: {', '.join(STEP_KINDS)})")
    return STEP_KINDS[key].model_validate(value)


class Test(Strict):
    name: str = Field(min_length=1, max_length=120)
    description: str = ""
    level: Literal["error", "warning"] = "error"
    steps: list[Annotated[Step, BeforeValidator(_one_step)]] = Field(min_length=1)


class Suite(Strict):
    suite: str = Field(min_length=1, max_length=120)
    scenario: str | None = None  # the scenario it is written for: checked when given
    stop_on_error: bool = False
    tests: list[Test] = Field(min_length=1)


# -- reading and checking against the scenario ------------------------------------------------

def resolve_path(name: str) -> Path:
    """A suite file, or the name of a built-in scenario for the suite shipped with it."""
    path = Path(name)
    if not path.exists() and name in loader.BUILTIN:
        return loader.resolve_path(name).with_suffix(".tests.yml")
    return path


def read(path: str, sc: Scenario, plan: EmulationPlan) -> Suite:
    """The suite in `path`, checked against the scenario and its lab plan; every problem at once."""
    return _checked(safe_yaml.read(resolve_path(path), path), path, sc, plan)


def parse(text: str, source: str, sc: Scenario, plan: EmulationPlan) -> Suite:
    """The same, from a suite's text (an API upload)."""
    return _checked(safe_yaml.parse(text, source), source, sc, plan)


def _checked(data: object, source: str, sc: Scenario, plan: EmulationPlan) -> Suite:
    if not isinstance(data, dict):
        raise InputError(source, [Problem("", f"expected a mapping with 'suite' and 'tests', got "
                                              f"{type(data).__name__}")])
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        raise InputError(source, pydantic_problems(exc)) from None
    if problems := check(suite, sc, plan):
        raise InputError(source, problems)
    return suite


def check(suite: Suite, sc: Scenario, plan: EmulationPlan) -> list[Problem]:
    out: list[Problem] = []
    if suite.scenario is not None and suite.scenario != sc.name:
        out.append(Problem("scenario", f"the suite is for scenario '{suite.scenario}', not '{sc.name}'"))
    names: set[str] = set()
    for i, test in enumerate(suite.tests):
        if test.name in names:
            out.append(Problem(join_path("tests", i, "name"), f"a second test named '{test.name}'"))
        names.add(test.name)
        drilled: str | None = None  # where the backup DC took over (each test starts at home: its baseline)
        for j, step in enumerate(test.steps):
            where = join_path("tests", i, "steps", j)
            out += [Problem(join_path(where, p), m) for p, m in _step_problems(step, sc, plan)]
            if isinstance(step, DrillStep):
                if drilled is not None:
                    out.append(Problem(where, f"the drill at {drilled} already failed the services over: fail "
                                              "back (a 'failback' step) before drilling again"))
                drilled = where
            elif isinstance(step, FailbackStep):
                if drilled is None:
                    out.append(Problem(where, "nothing to fail back: a failback follows a drill in the same test"))
                drilled = None
    if uses_services(suite):
        out += _deployment_problems(sc, plan)
    return out


def uses_services(suite: Suite) -> bool:
    return any(isinstance(s, (ServiceStep, DrillStep, FailbackStep)) for t in suite.tests for s in t.steps)


def _deployment_problems(sc: Scenario, plan: EmulationPlan) -> list[Problem]:
    try:
        plan_deployment(sc, plan)
    except EgovlabError as exc:
        return [Problem("tests", f"its service, drill and failback steps need the services deployed: {exc}")]
    return []


def _fault_problem(plan: EmulationPlan, action: str, target: str) -> str | None:
    try:
        faults.resolve(plan, action, target)
    except EgovlabError as exc:  # the lab's own message for a target it does not have
        return str(exc)
    return None


def _host_problem(plan: EmulationPlan, host: str | None) -> str | None:
    if host is None or host in plan.by_label:
        return None
    return f"unknown host '{host}' in the lab (see `egovlab plan FILE --view hosts`)"


def _step_problems(step, sc: Scenario, plan: EmulationPlan) -> list[tuple[str, str]]:
    out = []
    if isinstance(step, FaultStep) and (m := _fault_problem(plan, step.fault.action, step.fault.target)):
        out.append(("fault", m))
    elif isinstance(step, RestoreStep) and step.restore != "all":
        if (m := _fault_problem(plan, step.restore.action, step.restore.target)):
            out.append(("restore", m))
    elif isinstance(step, FlapStep) and (m := _fault_problem(plan, "link-down", step.flap.link)):
        out.append(("flap.link", m))
    elif isinstance(step, FailoverStep):
        f = step.failover
        if m := _fault_problem(plan, "link-down", f.link):
            out.append(("failover.link", m))
        for key, host in (("from", f.source), ("to", f.to)):
            if m := _host_problem(plan, host):
                out.append((f"failover.{key}", m))
        if f.port is not None and f.port.proto != "udp":
            out.append(("failover.port", f"the failover probe sends UDP: expected 'udp/N', got '{f.port}'"))
        if (f.source is None) != (f.to is None):
            out.append(("failover", "give both 'from' and 'to', or neither (a host behind the link to a DC server)"))
    elif isinstance(step, ServiceStep) and step.service.name != PORTAL:
        out.append(("service.name", f"the portal ('{PORTAL}') is the service citizens reach through its "
                                    f"address, got '{step.service.name}'"))
    elif isinstance(step, DrillStep):
        kinds = {name: s.kind for name, s in sc.sites.items()}
        if kinds.get(step.drill.fail) != "provincial-dc":
            primary = [n for n, k in kinds.items() if k == "provincial-dc"]
            out.append(("drill.fail", f"the drill fails the provincial DC over to the backup: expected "
                                      f"{' or '.join(repr(p) for p in primary) or 'a provincial-dc site'}, "
                                      f"got '{step.drill.fail}'"))
        if sc.spec.resilience is None and (step.drill.max_rto is None or step.drill.max_rpo is None):
            out.append(("drill", "the scenario has no resilience targets: give max_rto and max_rpo"))
    elif isinstance(step, FailbackStep):
        if sc.spec.resilience is None and (step.failback.max_rto is None or step.failback.max_rpo is None):
            out.append(("failback", "the scenario has no resilience targets: give max_rto and max_rpo"))
    elif isinstance(step, (ReachStep, DenyStep)):
        key = "reach" if isinstance(step, ReachStep) else "deny"
        r = step.reach if key == "reach" else step.deny
        for field, selector in (("from", r.source), ("to", r.to)):
            if m := selector_problem(sc, selector):
                out.append((f"{key}.{field}", m))
    return out
