"""Every `egovlab` command shown in a `sh` block of the README and of docs/ is checked against the
real CLI: each form of it (without its optional `[...]` parts, and with each of them) parses —
the verb exists, every option exists and takes its value —, and every one that needs no lab
(the scenario verbs, verify, the simulation) runs and exits without a bad-input error or a
traceback; every one that works on a running lab (status, probes, faults, policy, verify and
export with `--prefix`) runs, in the docs' order, on the province brought up by the docs' own
`up --detach` example; the rest (verbs that make labs or VMs of their own) are run by the tests
named in ELSEWHERE. A renamed verb or option, or an example that no longer works, fails here."""
from __future__ import annotations

import itertools
import re
import shlex
import subprocess

import click
import pytest

from egovlab.cli import cli

from .conftest import EGOVLAB, ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Verbs that run without a lab or root; the rest are parsed here and run by the emulation tests.
RUNS = {"validate", "show", "plan", "export", "verify", "analyze", "simulate", "size", "dr", "forecast", "stress",
        "sensitivity"}
# Verbs that act on a running lab: run by test_every_lab_example_runs_on_a_lab.
ON_LAB = {"status", "probe", "fault", "policy", "verify", "export"}
# Verbs whose examples make labs, services or VMs of their own, or serve, or name files made by an
# earlier step: the test that runs them, and what it calls them by.
ELSEWHERE = {"up": ("test_lab_record.py", '"up"'), "down": ("test_interrupts.py", '"down"'),
             "check": ("test_emulation.py", '"check"'), "test": ("test_suites.py", '"test"'),
             "deploy": ("test_services.py", '"deploy"'), "drill": ("test_services.py", '"drill"'),
             "failback": ("test_services.py", '"failback"'), "soak": ("test_services.py", '"soak"'),
             "controller": ("test_sdn.py", '"controller"'), "serve": ("conftest.py", '"serve"'),
             "vm": ("test_vm.py", "runner.run("), "import": ("test_clab.py", '"import"'),
             "plan": ("test_cli.py", '"--save"'), "export": ("test_napalm.py", '"nuts"')}
LAB_PREFIX = "dx"


def _lines() -> list[tuple[str, str]]:
    out = []
    for doc in DOCS:
        for block in re.findall(r"```sh\n(.*?)```", doc.read_text(), re.S):
            for line in block.splitlines():
                code = line.split(" #", 1)[0].strip()
                if code and not code.startswith("#"):
                    out.append((doc.name, code))
    return out


def _invocations(code: str) -> list[str]:
    """The egovlab commands of a shell line (`a && b`, a redirect, an environment prefix)."""
    found = []
    for part in re.split(r"&&|\|\||;", code):
        part = re.split(r"\s[|>]", part)[0].strip()
        part = re.sub(r"^(\w+=('[^']*'|\S*)\s+)+", "", part)  # an environment prefix: VAR=value
        match = re.match(r"(?:\.venv/bin/)?egovlab\s(.*)$", part)
        if match:
            found.append(match.group(1).strip())
    return found


def _forms(text: str) -> list[list[str]]:
    """Without its optional `[...]` groups, with each one (its first alternative of `a|b`), and
    with all of them (the last form)."""
    groups = [g for g in re.findall(r"\[([^\[\]]*)\]", text)
              if "ARGS" not in g and "..." not in g]  # not a placeholder for any arguments (`[PYTEST ARGS...]`)
    bare = re.sub(r"\s*\[[^\[\]]*\]", "", text)
    choices = [" ".join(word.split("|")[0] for word in g.split()) for g in groups]
    forms = [bare, *(f"{bare} {c}" for c in choices)]
    if len(choices) > 1:
        forms.append(" ".join([bare, *choices]))
    return [shlex.split(f) for f in forms]


INVOCATIONS = [(doc, inv) for doc, code in _lines() for inv in _invocations(code)]
EXAMPLES = sorted({(doc, tuple(form)) for doc, inv in INVOCATIONS for form in _forms(inv)})


def test_the_docs_have_examples_of_every_verb():
    verbs = {form[0] for _, form in EXAMPLES}
    assert set(cli.commands) <= verbs, f"verbs with no example in the docs: {set(cli.commands) - verbs}"


def _parse(args: list[str]) -> click.Command:
    """The command the arguments name, parsed as the CLI parses them (nothing is run)."""
    ctx = cli.make_context("egovlab", list(args))
    command: click.Command = cli
    while isinstance(command, click.Group):
        name, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        ctx = command.make_context(name, rest, parent=ctx)
    return command


@pytest.mark.parametrize("doc,form", EXAMPLES, ids=[f"{d}: {' '.join(f)}" for d, f in EXAMPLES])
def test_every_example_parses(doc: str, form: tuple[str, ...]):
    try:
        _parse(list(form))
    except click.UsageError as exc:
        pytest.fail(f"{doc}: egovlab {' '.join(form)}: {exc.format_message()}")


def _runnable(form: tuple[str, ...]) -> bool:
    if form[0] not in RUNS or "--prefix" in form:
        return False
    inputs = [a for before, a in zip(form, form[1:]) if before not in ("-o", "--output", "--json", "--out")]
    return not any(a.endswith(".yml") and not (ROOT / a).exists() for a in inputs)  # `my-province.yml`


# each example line once, in its fullest form (its options are mostly the defaults)
RUNNABLE = sorted({(d, tuple(_forms(inv)[-1])) for d, inv in INVOCATIONS if _runnable(tuple(_forms(inv)[-1]))})


def _on_lab(form: tuple[str, ...]) -> bool:
    """An example for the province's running lab (not one for another scenario's)."""
    return form[0] in ON_LAB and (form[0] not in ("verify", "export") or "--prefix" in form) and \
        not any("tests/scenarios/" in a for a in form)


def _with_prefix(form: tuple[str, ...], prefix: str) -> list[str]:
    args = list(form)
    if "--prefix" in args:
        args[args.index("--prefix") + 1] = prefix
        return args
    return [*args, "--prefix", prefix]


# in the order the docs give them (README first): faults before `fault clear`, commit before rollback
LAB_EXAMPLES = list(dict.fromkeys(tuple(_forms(inv)[-1]) for _, inv in INVOCATIONS if _on_lab(tuple(_forms(inv)[-1]))))


@pytest.mark.slow
@pytest.mark.parametrize("doc,form", RUNNABLE, ids=[f"{d}: {' '.join(f)}" for d, f in RUNNABLE])
def test_every_example_that_needs_no_lab_runs(doc: str, form: tuple[str, ...], tmp_path):
    # in a scratch directory, so `-o out/...` and `--out out` write there, with the repository's
    # scenario names and files at hand
    for name in ("inventory", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    r = subprocess.run([str(EGOVLAB), *form], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr and "internal error" not in r.stderr, \
        f"{doc}: egovlab {' '.join(form)}: exit {r.returncode}\n{r.stderr[-2000:]}"
    if form[0] != "verify":  # verify exits 1 when the program differs (the FF-only example does)
        assert r.returncode == 0, r.stderr[-2000:]


def test_the_examples_cover_the_forms_the_checks_depend_on():
    """The extraction itself: an `&&` line, a redirect and optional groups give what they should."""
    assert _invocations("egovlab up dongthap --detach && egovlab deploy [--replication sync|async]") == [
        "up dongthap --detach", "deploy [--replication sync|async]"]
    assert _invocations("egovlab plan dongthap --format json > plan.json") == ["plan dongthap --format json"]
    assert _forms("show dongthap [--all]") == [["show", "dongthap"], ["show", "dongthap", "--all"]]
    assert _forms("graph g [--layout a|b|c]")[1] == ["graph", "g", "--layout", "a"]
    assert _invocations("X='a:b' egovlab serve") == ["serve"]
    assert _invocations("napalm -v egovlab -o x call get_facts") == []
    assert list(itertools.chain(*_forms("vm test [PYTEST ARGS...]"))) == ["vm", "test"]


def test_every_example_is_run_by_some_test():
    for doc, form in EXAMPLES:
        if _runnable(form) or _on_lab(form):
            continue
        assert form[0] in ELSEWHERE, f"{doc}: egovlab {' '.join(form)}: no test runs this example (ELSEWHERE)"
        where, marker = ELSEWHERE[form[0]]
        assert marker in (ROOT / "tests" / where).read_text(), f"{where} does not run `egovlab {form[0]}`"


@pytest.mark.emulation
@pytest.mark.slow
def test_every_lab_example_runs_on_a_lab(tmp_path):
    """The docs' lab examples, each in its fullest form and with this test's prefix, on the province
    that the docs' `up dongthap --detach` brings up; `down` removes it whatever happens."""
    import os

    from egovlab.topology import cleanup

    if os.geteuid() != 0:
        pytest.skip("the lab needs root (CI runs as root)")
    for name in ("inventory", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "more.yml").write_text("- {from: kind:commune, to: service:csdl}\n")  # a policy candidate

    def run(args: list[str]) -> subprocess.CompletedProcess:
        r = subprocess.run([str(EGOVLAB), *args], cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0 and "Traceback" not in r.stderr, \
            f"egovlab {' '.join(args)}: exit {r.returncode}\n{r.stdout[-1500:]}\n{r.stderr[-2000:]}"
        return r

    up = next(inv for _, inv in INVOCATIONS if inv == "up dongthap --detach")
    try:
        run(_with_prefix(tuple(shlex.split(up)), LAB_PREFIX))
        for form in LAB_EXAMPLES:
            run(_with_prefix(form, LAB_PREFIX))
        assert "lab removed" in run(["down", "--prefix", LAB_PREFIX]).stdout
    finally:
        subprocess.run([str(EGOVLAB), "down", "--prefix", LAB_PREFIX], capture_output=True, timeout=300)
        assert not any(cleanup.leftovers(LAB_PREFIX).values())
