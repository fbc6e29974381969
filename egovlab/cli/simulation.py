"""CLI verbs of the simulation: simulate, size, dr. Tables in the terminal, JSON and PNG in --out."""
from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from egovlab import params
from egovlab.inventory import loader
from egovlab.inventory.errors import EgovlabError

from .common import SCENARIO, console, write_file

OUT = click.option("--out", default="out", show_default=True, type=click.Path(file_okay=False),
                   help="Directory for the JSON and PNG reports.")
SEED = click.option("--seed", type=params.SEED.click(integer=True), default=1, show_default=True)
REPS = click.option("--replications", type=params.REPLICATIONS.click(integer=True), default=10, show_default=True,
                    help="Independent replications (95 % confidence intervals need at least 2).")
EXECUTOR = click.option("--executor", "executor_spec", default="process", show_default=True, metavar="SPEC",
                        help="Where the tasks run: local, process, dask (a LocalCluster of --workers processes) "
                             "or dask://HOST:PORT (a running scheduler). Same seed, same results on each.")
WORKERS = click.option("--workers", type=params.WORKERS.click(integer=True), default=None,
                       help="Processes for --executor process (default: every core) or dask (default: 2).")


class _Bar:
    """The executor's progress as a rich bar: one line per phase, counting finished tasks."""

    def __init__(self, progress: Progress):
        self.progress, self.task = progress, None

    def start(self, label: str, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        self.task = self.progress.add_task(label, total=total)

    def advance(self) -> None:
        self.progress.advance(self.task)


@contextlib.contextmanager
def executor_for(spec: str, workers: int | None):
    from egovlab.simulation import executor

    executor.parse(spec)  # a bad --executor is refused before anything starts
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress, \
            executor.open_executor(spec, workers, _Bar(progress)) as ex:
        yield ex


def ci(est: dict, scale: float = 1.0, fmt: str = "{:.3f}") -> str:
    lo, hi = est["ci95"]
    return f"{fmt.format(est['mean'] * scale)} [{fmt.format(lo * scale)}, {fmt.format(hi * scale)}]"


def _assumption_table(rows: list[dict]) -> Table:
    table = Table(title="inputs and their basis (document, derived, assumption)")
    for col in ("figure", "value", "basis", "source or reasoning"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["what"], f"{r['value']:g}" if isinstance(r["value"], (int, float)) else str(r["value"]),
                      r["basis"], r["ref"])
    return table


def _model(file: str):
    from egovlab.simulation import province
    sc = loader.load(file)
    return sc, province.build(sc)


@click.command()
@SCENARIO
@click.option("--horizon", default="365d", show_default=True, help="Length of the fluid (hourly) run.")
@SEED
@REPS
@click.option("--peak-minutes", type=params.PEAK_MINUTES.click(), default=60, show_default=True,
              help="Length of the per-request window at the peak.")
@OUT
@EXECUTOR
@WORKERS
def simulate(file: str, horizon: str, seed: int, replications: int, peak_minutes: float, out: str,
             executor_spec: str, workers: int | None) -> None:
    """Capacity of the province: the peak hour request by request, and a year with failures."""
    from egovlab.simulation import province, runs

    hours = params.parse_horizon(horizon)
    sc, model = _model(file)
    r = sc.spec.resilience
    if r is None:
        raise EgovlabError(f"{sc.source}: resilience: needed for the yearly run (failures and repairs)")
    target_s = province.response_target(sc)
    console.print(_assumption_table(province.assumptions_of(sc)))
    with executor_for(executor_spec, workers) as ex:
        t0 = time.perf_counter()
        peak = runs.peak_window(model, replications=replications, seed=seed, minutes=peak_minutes,
                                target_s=target_s, executor=ex)
        t_peak = time.perf_counter() - t0
        t1 = time.perf_counter()
        year = runs.year(model, _year_settings(r, target_s), horizon_h=hours, replications=replications,
                         seed=seed, backup_capacity=_backup_cores(sc, model), servers_per_tier=_servers(sc, model),
                         executor=ex)
        t_year = time.perf_counter() - t1

    table = Table(title=f"peak hour (load x{peak['factor']:.2f} of an average working-day hour), "
                        f"{replications} replications, mean [95 % CI]")
    for col in ("service", "requests/rep", "mean s", "p50 s", "p95 s", "p99 s", f"SLA p<={target_s:g}s", "timeouts"):
        table.add_column(col, justify="right" if col != "service" else "left")
    for name, s in peak["services"].items():
        table.add_row(name, str(s["requests_per_replication"]), ci(s["mean"]), ci(s["p50"]), ci(s["p95"]),
                      ci(s["p99"]), ci(s["sla"], 100, "{:.1f}") + " %", str(s["timeouts"]))
    console.print(table)
    util = Table(title="utilisation at the peak, mean [95 % CI]")
    util.add_column("resource")
    util.add_column("servers", justify="right")
    util.add_column("utilisation", justify="right")
    for name, u in peak["utilisation"].items():
        util.add_row(name, str(model.servers(name)), ci(u, 100, "{:.2f}") + " %")
    console.print(util)
    if peak["video_conference_mbps"]:
        console.print(f"video conference at the peak (worst case, §VII.4.c): {peak['video_conference_mbps']:g} Mbps "
                      f"of the DC's {model.channel_bps['tslcd'] / 1e6:g} Mbps TSLCD uplink")
    yt = Table(title=f"{horizon} with failures and repairs (hourly fluid model), mean [95 % CI]")
    yt.add_column("figure")
    yt.add_column("value", justify="right")
    yt.add_column("interval")
    yt.add_row("availability (requests served)", ci(year["availability"], 100, "{:.4f}") + " %",
               year["availability"]["ci_method"])
    yt.add_row(f"requests meeting p95<={target_s:g}s", ci(year["sla"], 100, "{:.4f}") + " %", year["sla"]["ci_method"])
    for key in ("server_failures", "link_failures", "dc_failures", "video_conferences", "hours_degraded",
                "unavailable_requests"):
        yt.add_row(key.replace("_", " "), ci(year[key], 1, "{:.1f}"), year[key]["ci_method"])
    console.print(yt)
    report = {"scenario": sc.name, "seed": seed, "peak": peak, "year": year,
              "assumptions": province.assumptions_of(sc), "notes": model.notes}
    path = Path(out) / "simulation.json"
    write_file(path, json.dumps(report, indent=1, sort_keys=True))
    # Wall-clock figures differ run to run: apart, so that two runs' reports compare equal.
    write_timing(Path(out) / "simulation.timing.json", ex.name, peak=t_peak, year=t_year)
    png = Path(out) / "simulation.png"
    _plot_simulation(report, png)
    console.print(f"wrote {path} and {png} (peak {t_peak:.1f} s, year {t_year:.1f} s wall, {ex.name})")


def write_timing(path: Path, executor_name: str, **phases_s: float) -> None:
    write_file(path, json.dumps({"executor": executor_name, "wall_s": {k: round(v, 2) for k, v in phases_s.items()}},
                                indent=1, sort_keys=True))


def _year_settings(r, target_s: float):
    from egovlab.simulation import runs

    return runs.YearSettings(r.server_mtbf_h.value, r.server_mttr_h.value, r.link_mtbf_h.value,
                             r.link_mttr_h.value, r.dc_mtbf_h.value, r.dc_mttr_h.value,
                             rto_s=r.detection_s.value + r.redirection_s.value, target_s=target_s)


def _servers(sc, model) -> dict[str, int]:
    from egovlab.simulation import province

    return province.tier_capacity(sc, model.dc)[1]


def _backup_cores(sc, model) -> dict[str, int]:
    from egovlab.simulation import province

    backup = [d for d in sc.data_centres() if sc.sites[d].kind == "backup-dc"]
    return province.tier_capacity(sc, backup[0])[0] if backup else {t: 0 for t in model.capacity}


def _pyplot():
    """matplotlib without a display (the reports are files)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _plot_simulation(report: dict, png: Path) -> None:
    plt = _pyplot()

    services = report["peak"]["services"]
    names = list(services)
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    for offset, q in ((-0.25, "p50"), (0, "p95"), (0.25, "p99")):
        means = [services[n][q]["mean"] for n in names]
        errs = [[m - services[n][q]["ci95"][0] for n, m in zip(names, means)],
                [services[n][q]["ci95"][1] - m for n, m in zip(names, means)]]
        a.bar([i + offset for i in range(len(names))], means, width=0.25, yerr=errs, label=q, capsize=2)
    a.set_xticks(range(len(names)), names, rotation=30)
    a.set_ylabel("response time at the peak hour (s)")
    a.legend()
    util = report["peak"]["utilisation"]
    b.barh(list(util), [u["mean"] * 100 for u in util.values()])
    b.set_xlabel("utilisation at the peak (%)")
    fig.suptitle(f"{report['scenario']}: capacity at the peak hour (95 % CI over {report['peak']['replications']} "
                 f"replications)")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)


@click.command()
@SCENARIO
@click.option("--target", default="p95<2s", show_default=True, help="Response-time target, e.g. 'p99<800ms'.")
@SEED
@click.option("--replications", type=params.SIZING_REPLICATIONS.click(integer=True), default=3, show_default=True)
@OUT
@EXECUTOR
@WORKERS
def size(file: str, target: str, seed: int, replications: int, out: str, executor_spec: str,
         workers: int | None) -> None:
    """Smallest server count per tier that meets the target at the peak hour (search over simulations)."""
    from egovlab.simulation import province, sizing

    goal = sizing.parse_target(target)
    sc, model = _model(file)
    _, servers = province.tier_capacity(sc, model.dc)
    with executor_for(executor_spec, workers) as ex:
        result = sizing.size(model, servers, goal, replications=replications, seed=seed, executor=ex)
    table = Table(title=f"servers per tier for {result['target']} at the peak hour, sized together")
    for col in ("tier", "cores/server", "now", "needed", "fewest stable"):
        table.add_column(col)
    for tier, t in result["tiers"].items():
        table.add_row(tier, f"{t['cores_per_server']:g}", str(t["current_servers"]), str(t["needed_servers"]),
                      str(t["fewest_stable"]))
    console.print(table)
    q = goal[0]
    console.print(f"worst {q}: {result[f'theory_worst_{q}_s']:.3f} s by theory (M/M/c), "
                  f"{ci(result[f'simulated_worst_{q}_s'])} s simulated ({replications} replications)")
    write_file(Path(out) / "sizing.json", json.dumps(result, indent=1))


@click.command()
@SCENARIO
@SEED
@REPS
@click.option("--failures", type=params.DR_FAILURES.click(integer=True), default=1000, show_default=True,
              help="Primary-DC failures simulated per replication.")
@click.option("--cost-years", type=params.COST_YEARS.click(integer=True), default=5, show_default=True,
              help="Years of running cost added to the capital cost when ranking strategies.")
@OUT
@EXECUTOR
@WORKERS
def dr(file: str, seed: int, replications: int, failures: int, cost_years: int, out: str, executor_spec: str,
       workers: int | None) -> None:
    """Disaster-recovery strategies side by side: RTO, RPO, lost submissions; those meeting the targets by cost."""
    from egovlab.simulation import dr as drmodel
    from egovlab.simulation import province

    sc = loader.load(file)
    with executor_for(executor_spec, workers) as ex:
        result = drmodel.compare(sc, failures=failures, replications=replications, seed=seed, executor=ex)
    r = sc.spec.resilience
    dci = [l.bandwidth for l in sc.links if l.kind == "dc-interconnect" and l.bandwidth]
    result["replication"] = drmodel.replication(province.build(sc), r, max(dci) if dci else None)
    t = result["targets"]
    table = Table(title=f"failover to the backup DC: {failures} failures x {replications} replications, "
                        f"mean [95 % CI]; targets RTO {t['rto_s']:g} s, RPO {t['rpo_s']:g} s")
    for col in ("strategy", "RTO mean s", "RTO p95 s", "RPO mean s", "RPO p95 s", "meets RTO", "meets RPO",
                "failed subm.", "lost subm."):
        table.add_column(col, justify="right" if col != "strategy" else "left")
    for name, s in result["strategies"].items():
        table.add_row(name, ci(s["rto"]["mean"], 1, "{:.0f}"), ci(s["rto"]["p95"], 1, "{:.0f}"),
                      ci(s["rpo"]["mean"], 1, "{:.1f}"), ci(s["rpo"]["p95"], 1, "{:.1f}"),
                      ci(s["meets_rto"], 100, "{:.1f}") + " %", ci(s["meets_rpo"], 100, "{:.1f}") + " %",
                      ci(s["failed"]["mean"], 1, "{:.1f}"), ci(s["lost"]["mean"], 1, "{:.2f}"))
    console.print(table)
    console.print(f"assumptions: standby start means {result['assumptions']['standby_start_mean_s']} s; "
                  f"cold standby restores a backup taken every {result['assumptions']['backup_interval_s']:g} s; "
                  f"{result['submissions_per_s']} submissions/s at the peak")
    if r.costs is not None:
        result["ranking"] = {"currency": r.costs.currency, "years": cost_years,
                             "strategies": drmodel.rank(result["strategies"], r.costs, t, cost_years)}
        _print_ranking(result["ranking"])
    rep = result["replication"]
    lag = rep.get("achieved_rpo_p95_s")
    console.print(f"asynchronous replication at the peak: {rep['write_mbps_at_peak']:g} Mbps of writes; "
                  f"RPO {t['rpo_s']:g} s needs {_mbps(rep['needed_mbps_for_target'])} of DC interconnect; "
                  f"the scenario's {_mbps(rep.get('interconnect_mbps'))} gives a p95 lag of "
                  + ("unbounded" if lag is None else f"{lag:g} s"))
    path = Path(out) / "dr.json"
    write_file(path, json.dumps(result, indent=1, sort_keys=True))
    _plot_dr(result, Path(out) / "dr.png")
    console.print(f"wrote {path} and {Path(out) / 'dr.png'}")


def _mbps(value) -> str:
    return "unreachable" if value is None else f"{value:g} Mbps"


def _print_ranking(ranking: dict) -> None:
    table = Table(title=f"strategies meeting the p95 RTO and RPO targets, cheapest first "
                        f"(capital + {ranking['years']} years, {ranking['currency']})")
    for col in ("rank", "strategy", "RTO p95 s", "RPO p95 s", "capital", "yearly", "total", "why not"):
        table.add_column(col)
    for row in ranking["strategies"]:
        table.add_row(str(row.get("rank", "-")), row["strategy"], f"{row['rto_p95_s']:.0f}", f"{row['rpo_p95_s']:.1f}",
                      f"{row.get('capital', 0):g}", f"{row.get('yearly', 0):g}", f"{row.get('total', 0):g}",
                      "; ".join(row["why_not"]))
    console.print(table)


def _plot_dr(result: dict, png: Path) -> None:
    plt = _pyplot()

    names = list(result["strategies"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    a.boxplot([result["strategies"][n]["samples_rto"] for n in names], tick_labels=names)
    a.set_yscale("log")
    a.set_ylabel("RTO (s)")
    b.boxplot([[max(v, 1e-3) for v in result["strategies"][n]["samples_rpo"]] for n in names], tick_labels=names)
    b.set_yscale("log")
    b.set_ylabel("RPO (s, 1 ms floor for synchronous)")
    fig.suptitle("failover to the backup data centre: RTO and RPO per strategy")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)



@click.command()
@SCENARIO
@click.option("--years", "years_text", default="2020-2030", show_default=True, help="FIRST-LAST year.")
@SEED
@click.option("--replications", type=params.REPLICATIONS.click(integer=True), default=3, show_default=True,
              help="Peak-hour replications per year (the p95's interval).")
@click.option("--peak-minutes", type=params.PEAK_MINUTES.click(), default=5, show_default=True)
@OUT
@EXECUTOR
@WORKERS
def forecast(file: str, years_text: str, seed: int, replications: int, peak_minutes: float, out: str,
             executor_spec: str, workers: int | None) -> None:
    """Growth to the document's targets: utilisation and p95 per year, when each runs out, what to buy."""
    from egovlab.simulation import forecast as fc
    from egovlab.simulation import province

    years = fc.parse_years(years_text)
    sc, model = _model(file)
    growth = sc.spec.workload.growth
    if growth is None:
        raise EgovlabError(f"{sc.source}: workload.growth: the scenario says nothing about growth to forecast")
    target_s = province.response_target(sc)
    t0 = time.perf_counter()
    with executor_for(executor_spec, workers) as ex:
        result = fc.forecast(model, growth, _servers(sc, model), years, target_s=target_s,
                             replications=replications, seed=seed, minutes=peak_minutes, executor=ex)
    wall = time.perf_counter() - t0
    resources = list(result["per_year"][years.start]["utilisation"])
    table = Table(title=f"peak-hour utilisation per year (%), worst p95 (s); {fc.THRESHOLD:.0%} is the headroom rule")
    table.add_column("year")
    for r in resources:
        table.add_column(r, justify="right")
    table.add_column("worst p95 s", justify="right")
    for year, row in result["per_year"].items():
        p95 = [v["mean"] for v in row["p95"].values() if v is not None]
        worst = "overload" if len(p95) < len(row["p95"]) else f"{max(p95):.3f}"
        table.add_row(str(year), *(_pct(row["utilisation"][r], fc.THRESHOLD) for r in resources), worst)
    console.print(table)
    crossing = {k: v for k, v in result["first_over_threshold"].items() if v is not None}
    missing = {k: v for k, v in result["first_missing_target"].items() if v is not None}
    console.print(f"first year over {fc.THRESHOLD:.0%}: " + (", ".join(f"{k} {v}" for k, v in crossing.items())
                                                          or f"none by {years.stop - 1}"))
    console.print(f"first year missing p95<={target_s:g}s: " + (", ".join(f"{k} {v}" for k, v in missing.items())
                                                                or f"none by {years.stop - 1}"))
    if result["purchases"]:
        buy = Table(title="purchase plan: keeps every resource below the headroom rule")
        for col in ("year", "what", "from", "to", "unit"):
            buy.add_column(col)
        for p in result["purchases"]:
            buy.add_row(str(p["year"]), p["what"], f"{p['from']:g}", f"{p['to']:g}", p["unit"])
        console.print(buy)
    else:
        console.print(f"purchase plan: nothing to buy by {years.stop - 1}")
    path = Path(out) / "forecast.json"
    write_file(path, json.dumps({"scenario": sc.name, "seed": seed, **result}, indent=1, sort_keys=True))
    write_timing(Path(out) / "forecast.timing.json", ex.name, forecast=wall)
    _plot_forecast(result, Path(out) / "forecast.png", sc.name)
    console.print(f"wrote {path} and {Path(out) / 'forecast.png'} ({wall:.1f} s wall, {ex.name})")


def _pct(u: float, threshold: float) -> str:
    text = f"{u * 100:.2f}"
    return f"[bold red]{text}[/]" if u >= threshold else text


def _plot_forecast(result: dict, png: Path, scenario: str) -> None:
    plt = _pyplot()

    years = [int(y) for y in result["per_year"]]
    rows = list(result["per_year"].values())
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for resource in rows[0]["utilisation"]:
        ax.plot(years, [r["utilisation"][resource] * 100 for r in rows], marker="o", label=resource)
    ax.axhline(result["threshold"] * 100, color="red", linestyle="--", label="headroom rule")
    ax.set_xlabel("year")
    ax.set_ylabel("utilisation at the peak hour (%)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(f"{scenario}: peak utilisation per resource, {years[0]}-{years[-1]}")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)



@click.command()
@SCENARIO
@click.option("--method", type=click.Choice(["morris", "sobol"]), default="morris", show_default=True,
              help="morris: screen every assumption; sobol: then Sobol indices of the --leading ones.")
@click.option("--outputs", "outputs_text", default="", metavar="LIST",
              help="Comma-separated outputs or prefixes (p95, p95:cong-dvc, utilisation, rto, lost); default all.")
@click.option("--trajectories", type=params.MORRIS_TRAJECTORIES.click(integer=True), default=10, show_default=True,
              help="Morris trajectories (r): samples = r x (inputs + 1).")
@click.option("--base-samples", type=click.Choice(["16", "32", "64", "128", "256", "512"]), default="64",
              show_default=True, help="Sobol base samples N (a power of 2): samples = N x (leading + 2).")
@click.option("--leading", type=params.SOBOL_LEADING.click(integer=True), default=6, show_default=True)
@click.option("--replications", type=params.SENSITIVITY_REPLICATIONS.click(integer=True), default=3,
              show_default=True, help="Peak-hour replications per sample (common random numbers).")
@click.option("--peak-minutes", type=params.PEAK_MINUTES.click(), default=2, show_default=True)
@SEED
@OUT
@EXECUTOR
@WORKERS
def sensitivity(file: str, method: str, outputs_text: str, trajectories: int, base_samples: str, leading: int,
                replications: int, peak_minutes: float, seed: int, out: str, executor_spec: str,
                workers: int | None) -> None:
    """Which assumption decides each conclusion: Morris screening and Sobol indices (SALib)."""
    from egovlab.simulation import sensitivity as sa

    sc = loader.load(file)
    wanted = [w.strip() for w in outputs_text.split(",") if w.strip()]
    t0 = time.perf_counter()
    with executor_for(executor_spec, workers) as ex:
        result = sa.run(sc, method=method, trajectories=trajectories, base_samples=int(base_samples),
                        leading=leading, replications=replications, minutes=peak_minutes, seed=seed,
                        outputs=wanted, executor=ex)
    wall = time.perf_counter() - t0
    inputs = {i["path"]: i for i in result["inputs"]}
    screening = result["screening"]
    table = Table(title=f"{len(inputs)} assumptions ranked by Morris mu* ({screening['samples']} samples x "
                        f"{replications} replications): the largest effect on any output")
    for col in ("#", "assumption", "effect", "on", "value", "range", "why"):
        table.add_column(col, overflow="fold")
    for k, row in enumerate(screening["ranking"][:15], 1):
        i = inputs[row["input"]]
        table.add_row(str(k), row["input"], f"{row['relative_effect']:.2f}", row["on"], f"{i['value']:g}",
                      f"{i['low']:g}-{i['high']:g}", i["ref"])
    console.print(table)
    if "sobol" in result:
        st = Table(title=f"Sobol indices of the {leading} leading assumptions ({result['sobol']['samples']} samples), "
                         "per output: the largest total index")
        for col in ("output", "assumption", "S1 [95 % CI]", "ST [95 % CI]"):
            st.add_column(col)
        for name, rows in result["sobol"]["outputs"].items():
            top = rows[0]
            st.add_row(name, top["input"], f"{top['S1']:.3f} ±{top['S1_conf']:.3f}",
                       f"{top['ST']:.3f} ±{top['ST_conf']:.3f}")
        console.print(st)
    path = Path(out) / "sensitivity.json"
    write_file(path, json.dumps(result, indent=1, sort_keys=True))
    write_timing(Path(out) / "sensitivity.timing.json", ex.name, sensitivity=wall)
    figures = _plot_tornados(result, Path(out) / "sensitivity")
    console.print(f"wrote {path} and {len(figures)} tornado charts in {Path(out) / 'sensitivity'}/ "
                  f"({wall:.1f} s wall, {ex.name})")


def _plot_tornados(result: dict, folder: Path, top: int = 12) -> list[Path]:
    """One tornado chart per output: the inputs' effects, largest on top."""
    plt = _pyplot()

    sobol = result.get("sobol")
    per_output = (sobol or result["screening"])["outputs"]
    key, conf = ("ST", "ST_conf") if sobol else ("mu_star", "mu_star_conf")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for output, rows in per_output.items():
        rows = [r for r in rows[:top] if r[key] > 0][::-1]
        fig, ax = plt.subplots(figsize=(9, 0.35 * max(len(rows), 3) + 1.2))
        ax.barh([r["input"] for r in rows], [r[key] for r in rows], xerr=[r[conf] for r in rows], capsize=2)
        ax.set_xlabel("total Sobol index" if sobol else "Morris mu* (output units per input range)")
        ax.set_title(f"{result['scenario']}: what decides {output}")
        ax.tick_params(axis="y", labelsize=7)
        fig.tight_layout()
        png = folder / f"{output.replace(':', '-')}.png"
        fig.savefig(png, dpi=100)
        plt.close(fig)
        written.append(png)
    return written



@click.command()
@SCENARIO
@SEED
@click.option("--replications", type=params.REPLICATIONS.click(integer=True), default=3, show_default=True,
              help="Bisections, one per replication (the break points' interval).")
@click.option("--peak-minutes", type=params.PEAK_MINUTES.click(), default=2, show_default=True)
@click.option("--tolerance", type=params.STRESS_TOLERANCE.click(), default=0.02, show_default=True,
              help="Relative width at which a bisection stops.")
@OUT
@EXECUTOR
@WORKERS
def stress(file: str, seed: int, replications: int, peak_minutes: float, tolerance: float, out: str,
           executor_spec: str, workers: int | None) -> None:
    """Headroom: the load multiplier at which each target breaks, and what breaks first."""
    from egovlab.simulation import province
    from egovlab.simulation import stress as st

    sc, model = _model(file)
    target_s = province.response_target(sc)
    t0 = time.perf_counter()
    with executor_for(executor_spec, workers) as ex:
        result = st.stress(model, target_s=target_s, replications=replications, seed=seed, minutes=peak_minutes,
                           tolerance=tolerance, executor=ex)
    wall = time.perf_counter() - t0
    table = Table(title="load multiplier at the peak hour where each target breaks (today = 1), mean [95 % CI]")
    for col in ("target", "multiplier", "note"):
        table.add_column(col)
    for name, s in result["services"].items():
        if s["holds_to_saturation"]:
            table.add_row(f"{name} p95<={target_s:g}s", f">= {result['saturation']:.2f}", "holds until a resource saturates")
        else:
            table.add_row(f"{name} p95<={target_s:g}s", ci(s, 1, "{:.2f}"), "")
    for name, r in sorted(result["resources"].items(), key=lambda kv: kv[1]["at_threshold"] or math.inf):
        if r["at_threshold"] is not None:
            table.add_row(f"{name} < {result['threshold']:.0%}", f"{r['at_threshold']:.2f}",
                          f"saturates at x{r['at_saturation']:.2f}")
    console.print(table)
    fr, fs = result["first_resource"], result["first_service"]
    console.print(f"first to break: {fr['name']} passes {result['threshold']:.0%} at x{fr['multiplier']:.2f}; "
                  + ("every service target holds until it saturates"
                     if all(s["holds_to_saturation"] for s in result["services"].values())
                     else f"the first service target to break is {fs['name']}'s at x{fs['multiplier']['mean']:.2f}"))
    path = Path(out) / "stress.json"
    write_file(path, json.dumps({"scenario": sc.name, "seed": seed, **result}, indent=1, sort_keys=True))
    write_timing(Path(out) / "stress.timing.json", ex.name, stress=wall)
    console.print(f"wrote {path} ({wall:.1f} s wall, {result['evaluations']} simulations, {ex.name})")


COMMANDS = [simulate, size, dr, forecast, sensitivity, stress]
