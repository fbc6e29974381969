"""Which assumption decides each conclusion: global sensitivity analysis with SALib.

Every figure of the workload and the resilience section whose basis is `assumption` (and the
simulation's own stated assumptions) is an input, varied over its `range:` or value ±50 %.
Morris elementary effects screen all of them; Sobol indices (Saltelli sampling) quantify the
leading ones, the others held at their values. The outputs are the figures a planner decides
on: each service's p95 at the peak hour (simulated, common random numbers across samples),
each resource's peak utilisation (exact for the model), the RTO and the acknowledged
submissions lost of the scenario's DR strategy (the DR model).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable

import numpy as np
from SALib.analyze import morris as morris_analyze
from SALib.analyze import sobol as sobol_analyze
from SALib.sample import morris as morris_sample
from SALib.sample import sobol as sobol_sample

from egovlab.inventory.errors import EgovlabError
from egovlab.inventory.scenario import Scenario
from egovlab.inventory.schema import Resilience, Workload

from . import dr, province
from .executor import Executor, ProcessExecutor, task_seeds
from .runs import peak_replication

DEFAULT_SPREAD = 0.5  # value ±50 % when a figure gives no range
MORRIS_LEVELS = 4
TIMEOUT_S = 30.0  # an overloaded sample's p95: the requests' timeout (no steady state)
SENSITIVITY_STREAM = 4
NOT_INPUTS = ("rto_target_s", "rpo_target_s")  # targets a planner sets, not assumptions about the world


@dataclass(frozen=True)
class Input:
    path: str  # where the figure is: workload.services.cong-dvc.app_ms, resilience.detection_s, simulation.X
    value: float
    low: float
    high: float
    ref: str


def inputs_of(sc: Scenario) -> list[Input]:
    """Every assumption the outputs can depend on, with its range."""
    found = []
    w, r = sc.spec.workload, sc.spec.resilience
    for name, load in w.services.items():
        found += [(f"workload.services.{name}.{f}", fig) for f, fig in load if hasattr(fig, "basis")]
    found.append(("workload.month_end_factor", w.month_end_factor))
    if w.video_conference is not None:
        found += [(f"workload.video_conference.{f}", fig) for f, fig in w.video_conference]
    if r is not None:
        found += [(f"resilience.{f}", fig) for f, fig in r if hasattr(fig, "basis") and f not in NOT_INPUTS]
    out = []
    for path, fig in found:
        if fig.basis != "assumption" or (fig.value == 0 and fig.range is None):
            continue  # a zero with no range cannot be spread by a share of itself
        low, high = fig.range or (fig.value * (1 - DEFAULT_SPREAD), fig.value * (1 + DEFAULT_SPREAD))
        out.append(Input(path, fig.value, low, high, fig.ref))
    iops, why = province.ASSUMPTIONS["san_iops_per_controller"]
    out.append(Input("simulation.san_iops_per_controller", iops, iops * (1 - DEFAULT_SPREAD),
                     iops * (1 + DEFAULT_SPREAD), why))
    return out


def apply(model: province.ProvinceModel, w: Workload, r: Resilience | None, inputs: list[Input],
          row) -> tuple[province.ProvinceModel, Resilience | None]:
    """The model and resilience figures with the sample's values in place of the inputs'."""
    wd, rd = w.model_dump(), r.model_dump() if r is not None else None
    san_iops = None
    for inp, v in zip(inputs, row):
        section, *rest = inp.path.split(".")
        if section == "simulation":
            san_iops = float(v)
            continue
        node = wd if section == "workload" else rd
        for key in rest:
            node = node[key]
        node["value"] = float(v)
    return province.with_workload(model, Workload.model_validate(wd), san_iops), \
        Resilience.model_validate(rd) if rd is not None else None


def _sample_task(args) -> dict:
    """One replication of one sample: the outputs that need a simulation."""
    model, r, minutes, seed, target_s, dr_failures, with_p95 = args
    during = model.with_meeting()
    factor = model.peak_factor()
    out = {}
    if not with_p95:
        pass  # no p95 asked for: no peak-hour simulation
    elif max(during.utilisation(factor).values()) >= 1:
        out.update({f"p95:{s.name}": TIMEOUT_S for s in model.services})
    else:
        peak = peak_replication((during, factor, minutes, seed, None, TIMEOUT_S, target_s))
        out.update({f"p95:{name}": s["p95"] for name, s in peak["services"].items()})
    if r is not None:
        strategy = dr.Strategy(r.standby, "backup" if r.standby == "cold" else r.replication)
        runs = dr.failovers((r, strategy, dr_failures, seed, dr.submission_rate(model)))
        out["rto"] = statistics.fmean(runs["rto"])
        out["lost"] = statistics.fmean(runs["lost"])
    return out


def province_outputs(sc: Scenario, inputs: list[Input], outputs: list[str], *, replications: int, minutes: float,
                     seed: int, executor: Executor,
                     dr_failures: int = 100) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """evaluate(X) -> {output: values per row of X} on the province model, through the executor."""
    base = province.build(sc)
    w, r = sc.spec.workload, sc.spec.resilience
    target_s = province.response_target(sc)
    seeds = task_seeds(seed, replications, SENSITIVITY_STREAM)  # the same for every sample (less noise)

    def evaluate(X: np.ndarray) -> dict[str, np.ndarray]:
        models = [apply(base, w, r, inputs, row) for row in X]
        with_p95 = any(o.startswith("p95:") for o in outputs)
        tasks = [(m, res, minutes, s, target_s, dr_failures, with_p95) for m, res in models for s in seeds]
        done = executor.map(_sample_task, tasks, f"{len(X)} samples x {replications} replications")
        out: dict[str, list[float]] = {}
        for i, (m, _) in enumerate(models):
            reps = done[i * replications:(i + 1) * replications]
            for key in reps[0]:
                out.setdefault(key, []).append(statistics.fmean(x[key] for x in reps))
            for key, u in m.with_meeting().utilisation(m.peak_factor()).items():
                out.setdefault(f"utilisation:{key}", []).append(u)
        return {k: np.asarray(v) for k, v in out.items() if k in outputs}

    return evaluate


def _problem(inputs: list[Input]) -> dict:
    return {"num_vars": len(inputs), "names": [i.path for i in inputs], "bounds": [[i.low, i.high] for i in inputs]}


def morris(inputs: list[Input], evaluate, *, trajectories: int, seed: int) -> dict:
    """Morris screening: per output, every input's mu* (mean |elementary effect|), its CI and sigma."""
    problem = _problem(inputs)
    X = morris_sample.sample(problem, N=trajectories, num_levels=MORRIS_LEVELS, seed=seed)
    Y = evaluate(X)
    per_output = {}
    for name, y in Y.items():
        si = morris_analyze.analyze(problem, X, y, num_levels=MORRIS_LEVELS, seed=seed, print_to_console=False)
        rows = [{"input": str(n), "mu_star": float(m), "mu_star_conf": float(c), "sigma": float(s)}
                for n, m, c, s in zip(si["names"], si["mu_star"], si["mu_star_conf"], si["sigma"])]
        per_output[name] = sorted(rows, key=lambda row: -row["mu_star"])
    return {"method": "morris", "trajectories": trajectories, "levels": MORRIS_LEVELS, "samples": len(X),
            "outputs": per_output, "ranking": _ranking(per_output, "mu_star")}


def sobol(inputs: list[Input], evaluate, *, base_samples: int, seed: int) -> dict:
    """First-order and total Sobol indices with their 95 % CIs (Saltelli sampling, no second order)."""
    problem = _problem(inputs)
    X = sobol_sample.sample(problem, base_samples, calc_second_order=False, seed=seed)
    Y = evaluate(X)
    per_output = {}
    for name, y in Y.items():
        if np.ptp(y) == 0:  # the output does not depend on these inputs at all
            rows = [{"input": n, "S1": 0.0, "S1_conf": 0.0, "ST": 0.0, "ST_conf": 0.0} for n in problem["names"]]
        else:
            si = sobol_analyze.analyze(problem, y, calc_second_order=False, seed=seed, print_to_console=False)
            rows = [{"input": n, "S1": float(a), "S1_conf": float(b), "ST": float(c), "ST_conf": float(d)}
                    for n, a, b, c, d in zip(problem["names"], si["S1"], si["S1_conf"], si["ST"], si["ST_conf"])]
        per_output[name] = sorted(rows, key=lambda row: -row["ST"])
    return {"method": "sobol", "base_samples": base_samples, "samples": len(X), "outputs": per_output,
            "ranking": _ranking(per_output, "ST")}


def _ranking(per_output: dict, key: str) -> list[dict]:
    """Inputs by their largest effect on any output (each output's effects scaled by its largest), then
    by the sum of their scaled effects over all outputs."""
    best: dict[str, tuple[float, str]] = {}
    total: dict[str, float] = {}
    for output, rows in per_output.items():
        top = max(row[key] for row in rows)
        for row in rows:
            scaled = row[key] / top if top > 0 else 0.0
            total[row["input"]] = total.get(row["input"], 0.0) + scaled
            if scaled > best.get(row["input"], (-1.0, ""))[0]:
                best[row["input"]] = (scaled, output)
    ranked = sorted(best, key=lambda n: (-best[n][0], -total[n], n))
    return [{"input": n, "relative_effect": round(best[n][0], 6), "on": best[n][1],
             "summed_effect": round(total[n], 6)} for n in ranked]


def output_names(sc: Scenario) -> list[str]:
    model = province.build(sc)
    names = [f"p95:{s.name}" for s in model.services] + [f"utilisation:{k}" for k in model.utilisation()]
    return names + (["rto", "lost"] if sc.spec.resilience is not None else [])


def select_outputs(sc: Scenario, wanted: list[str] | None) -> list[str]:
    """The outputs named (exact names or prefixes such as 'p95' or 'utilisation'); all when none is."""
    names = output_names(sc)
    if not wanted:
        return names
    unknown = [w for w in wanted if not any(n == w or n.startswith(f"{w}:") for n in names)]
    if unknown:
        raise EgovlabError(f"--outputs: none of {', '.join(unknown)} is an output (outputs: {', '.join(names)})")
    return [n for n in names if any(n == w or n.startswith(f"{w}:") for w in wanted)]


def run(sc: Scenario, *, method: str, trajectories: int, base_samples: int, leading: int, replications: int,
        minutes: float, seed: int, outputs: list[str] | None = None, executor: Executor | None = None) -> dict:
    if sc.spec.workload is None:
        raise EgovlabError(f"{sc.source}: workload: the scenario has no workload to analyse")
    inputs = inputs_of(sc)
    evaluate = province_outputs(sc, inputs, select_outputs(sc, outputs), replications=replications,
                                minutes=minutes, seed=seed, executor=executor or ProcessExecutor())
    result = {"scenario": sc.name, "seed": seed, "replications": replications, "peak_minutes": minutes,
              "inputs": [vars(i) for i in inputs], "screening": morris(inputs, evaluate, trajectories=trajectories,
                                                                       seed=seed)}
    if method == "sobol":
        lead = [r["input"] for r in result["screening"]["ranking"][:leading]]
        chosen = [i for i in inputs if i.path in lead]
        column = {i.path: k for k, i in enumerate(chosen)}

        def on_leading(X):  # the other inputs at their values
            return evaluate(np.array([[row[column[i.path]] if i.path in column else i.value for i in inputs]
                                      for row in X]))

        result["sobol"] = sobol(chosen, on_leading, base_samples=base_samples, seed=seed)
    return result
