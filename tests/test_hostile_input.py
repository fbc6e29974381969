"""Hostile but small input, as a new user (or an attacker) would give it: every case ends in a
few seconds with exit code 2 and one precise message, never a crash, a hang or a traceback.

The YAML cases are real files run through the real `egovlab` command (a segfault in the YAML
parser shows only in a separate process: exit 139). The fuzz tests hold the one YAML reader
to its contract: plain data or an `InputError`, nothing else.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from egovlab.inventory import safe_yaml
from egovlab.inventory.errors import InputError

from .conftest import EGOVLAB, SCENARIOS

MINI = (SCENARIOS / "mini.yml").read_text()
TOKENS = {"EGOVLAB_API_TOKENS": f"operator:{'o' * 30},read-only:{'r' * 30}"}


def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _mapping_bomb(levels: int = 8) -> str:
    lines = ["m0: &m0 {x: 1, y: 1, z: 1, w: 1}"]
    for i in range(1, levels):
        keys = ", ".join(f"k{j}: *m{i - 1}" for j in range(8))
        lines.append(f"m{i}: &m{i} {{{keys}}}")
    return "\n".join(lines) + "\n"


def _with(old: str, new: str) -> str:
    assert old in MINI, old
    return MINI.replace(old, new, 1)


# (id, scenario text or bytes, extra argv after FILE, expected stderr fragment)
YAML_CASES = [
    ("deep-flow-sequence", "a: " + "[" * 30000 + "]" * 30000, "a[0][0][0]"),
    ("deep-flow-mapping", "a: " + "{b: " * 30000 + "1" + "}" * 30000, "nested deeper than 64 levels"),
    ("deep-block-nesting", "".join(f"{'  ' * i}k{i}:\n" for i in range(200)) + "  " * 200 + "x: 1\n",
     "nested deeper than 64 levels"),
    ("deep-but-within-the-limit", "a: " + "[" * 63 + "]" * 63 + "\n", "a: unknown field"),
    ("alias-bomb", _bomb(), "more than 500,000 values (counting what aliases repeat)"),
    ("alias-bomb-of-mappings", _mapping_bomb(), "more than 500,000 values"),
    ("recursive-alias", "a: &a [1, *a]\n", "a[1]: line 1: alias *a refers to the node that contains it"),
    ("recursive-mapping-alias", "a: &a {b: *a}\n", "recursive structure"),
    ("undefined-alias", "a: *nowhere\n", "found undefined alias"),
    ("huge-integer", "scenario: " + "9" * 5000 + "\n", "a number of more than 4300 digits"),
    ("impossible-date", "scenario: mini\nstarted: 2020-02-30\n", "day is out of range for month"),
    ("unhashable-key", "? [a, b]\n: 1\n", "found unhashable key"),
    ("empty", "", "the file is empty, expected a scenario mapping"),
    ("only-a-comment", "# nothing here\n", "the file is empty"),
    ("top-level-list", "- a\n- b\n", "expected a mapping of scenario fields at the top level, got list"),
    ("top-level-scalar", "just words\n", "got str"),
    ("two-documents", "a: 1\n---\nb: 2\n", "expected a single document in the stream, but found another"),
    ("tab-indentation", "a:\n\tb: 1\n", "YAML syntax error"),
    ("unclosed-quote", 'scenario: "mini\n', "YAML syntax error"),
    ("unclosed-flow", "a: [1, 2\n", "YAML syntax error"),
    ("not-utf8", b"scenario: \xff\xfe\n", "not UTF-8 text"),
    ("nul-character", "scenario: a\x00b\n", "character 12: YAML error: control characters are not allowed"),
    ("python-object-tag", 'a: !!python/object/apply:os.system ["echo pwned"]\n', "could not determine a constructor"),
    ("custom-tag", "a: !include /etc/passwd\n", "could not determine a constructor"),
    ("bad-merge-key", "a: &a 1\nb:\n  <<: *a\n", "expected a mapping or list of mappings for merging"),
    ("duplicate-key", _with("scenario: mini", "scenario: mini\nscenario: again"), "duplicate name 'scenario'"),
    ("over-the-size-limit", "# " + "x" * (9 * 2**20) + "\n", "larger than 8 MiB"),
    ("nan-count", _with("count: 2", "count: .nan"), "sites.town.communes.count: input should be a finite number"),
    ("infinite-count", _with("count: 2", "count: .inf"), "input should be a finite number, got inf"),
    ("overflowing-float", _with("addressing:", "addressing:\n  lan_headroom: 1.0e+999"),
     "addressing.lan_headroom: input should be a finite number, got inf"),
    ("nan-float", _with("addressing:", "addressing:\n  lan_headroom: .nan"), "lan_headroom: input should be a finite"),
    ("a-huge-value-is-not-echoed", _with("kind: core", "kind: '" + "x" * 5000 + "'"), "xxxxxxxx...'"),
]


def _run(argv: list[str], env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    t0 = time.monotonic()
    r = subprocess.run([str(EGOVLAB), *argv], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)
    r.seconds = time.monotonic() - t0  # type: ignore[attr-defined]
    return r


def _refused(r: subprocess.CompletedProcess, message: str) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr[-2000:]
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert message in r.stderr, r.stderr[-2000:]
    assert len(r.stderr) < 4000, "one message per problem, not a dump"


@pytest.mark.parametrize("text,message", [c[1:] for c in YAML_CASES], ids=[c[0] for c in YAML_CASES])
def test_a_hostile_scenario_is_refused_with_a_message(tmp_path, text, message):
    f = tmp_path / "hostile.yml"
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    _refused(_run(["validate", str(f)]), message)


ALLOCATION_CASES = [
    ("a-list", "- v4:lan:town\n", "not an allocation file: expected 'key: prefix' lines, got a list"),
    ("not-a-prefix", "v4:lan:town: here\n", "v4:lan:town: expected an IPv4 prefix, got 'here'"),
    ("wrong-family", "v4:lan:town: 2001:db8::/64\n", "v4:lan:town: expected an IPv4 prefix"),
    ("v6-as-v4", "v6:lan:town: 198.18.0.0/24\n", "v6:lan:town: expected an IPv6 prefix"),
    ("host-bits", "v4:lan:town: 198.18.0.5/24\n", "has host bits set (the block is 198.18.0.0/24)"),
    ("unknown-key", "lan:town: 198.18.0.0/24\n", "lan:town: unknown key: expected 'v4:...' or 'v6:...'"),
    ("a-number", "v4:lan:town: 42\n", "expected an IPv4 prefix, got '42'"),
    ("syntax-error", "v4:lan:town: [198.18.0.0/24\n", "YAML syntax error"),
    ("alias-bomb", _bomb(), "more than 500,000 values"),
    ("deep", "a: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 64 levels"),
]


@pytest.mark.parametrize("text,message", [c[1:] for c in ALLOCATION_CASES], ids=[c[0] for c in ALLOCATION_CASES])
def test_a_broken_allocation_file_is_refused_by_every_verb_that_reads_it(tmp_path, text, message):
    scenario = tmp_path / "mini.yml"
    scenario.write_text(MINI)
    alloc = tmp_path / "mini.allocations.yml"
    alloc.write_text(text)
    for argv in (["validate", str(scenario)], ["plan", str(scenario)], ["show", str(scenario)]):
        r = _run(argv)
        _refused(r, message)
        assert str(alloc) in r.stderr  # the message names the allocation file, not the scenario


# (id, argv, environment, expected stderr fragment): refused while parsing, before anything runs
OPTION_CASES = [
    ("peak-minutes-nan", ["simulate", "dongthap", "--peak-minutes", "nan"], {}, "'nan' is not a finite number"),
    ("peak-minutes-inf", ["simulate", "dongthap", "--peak-minutes", "inf"], {}, "'inf' is not a finite number"),
    ("peak-minutes-minus-inf", ["simulate", "dongthap", "--peak-minutes", "-inf"], {}, "not a finite number"),
    ("peak-minutes-huge", ["simulate", "dongthap", "--peak-minutes", "1e308"], {}, "not in the range 1<=x<=600"),
    ("peak-minutes-words", ["simulate", "dongthap", "--peak-minutes", "sixty"], {}, "is not a valid float"),
    ("horizon-huge", ["simulate", "dongthap", "--horizon", "99999999d"], {}, "outside 1m to 3650d"),
    ("horizon-exponent", ["simulate", "dongthap", "--horizon", "1e5d"], {}, "expected a duration like '365d'"),
    ("horizon-nan", ["simulate", "dongthap", "--horizon", "nand"], {}, "expected a duration"),
    ("horizon-empty", ["simulate", "dongthap", "--horizon", ""], {}, "expected a duration"),
    ("horizon-zero", ["simulate", "dongthap", "--horizon", "0d"], {}, "outside 1m to 3650d"),
    ("seed-negative", ["simulate", "dongthap", "--seed", "-1"], {}, "not in the range 0<=x<=4294967295"),
    ("seed-huge", ["simulate", "dongthap", "--seed", str(2**64)], {}, "not in the range 0<=x<=4294967295"),
    ("replications-one", ["simulate", "dongthap", "--replications", "1"], {}, "not in the range 2<=x<=200"),
    ("replications-huge", ["simulate", "dongthap", "--replications", "100000"], {}, "not in the range 2<=x<=200"),
    ("size-replications", ["size", "dongthap", "--replications", "51"], {}, "not in the range 2<=x<=50"),
    ("size-target", ["size", "dongthap", "--target", "fast"], {}, "--target"),
    ("dr-failures-float", ["dr", "dongthap", "--failures", "1e9"], {}, "is not a valid integer"),
    ("dr-failures-huge", ["dr", "dongthap", "--failures", "100000000"], {}, "not in the range 10<=x<=100000"),
    ("drill-seconds-nan", ["drill", "dongthap", "--seconds", "nan"], {}, "not a finite number"),
    ("drill-seconds-huge", ["drill", "dongthap", "--seconds", "1e12"], {}, "not in the range 15<=x<=600"),
    ("drill-rate-zero", ["drill", "dongthap", "--rate", "0"], {}, "not in the range 1<=x<=50"),
    ("up-hosts-per-site", ["up", "dongthap", "--hosts-per-site", "1000"], {}, "not in the range 0<=x<=50"),
    ("up-ovs-shards", ["up", "dongthap", "--ovs-shards", "0"], {}, "not in the range 1<=x<=64"),
    ("probe-interval-nan", ["probe", "failover", "x", "--from", "a", "--to", "b", "--interval-ms", "nan"], {},
     "not a finite number"),
    ("probe-seconds-inf", ["probe", "failover", "x", "--from", "a", "--to", "b", "--seconds", "inf"], {},
     "not a finite number"),
    ("controller-port", ["controller", "dongthap", "--port", "70000"], {}, "not in the range 1<=x<=65535"),
    ("vm-timeout-inf", ["vm", "test", "--timeout", "inf"], {}, "not a finite number"),
    ("serve-port-zero", ["serve", "--port", "0"], TOKENS, "not in the range 1<=x<=65535"),
    ("serve-beyond-loopback-in-clear", ["serve", "--host", "0.0.0.0"], TOKENS,
     "beyond loopback the tokens would cross the network in clear"),
    ("serve-host-not-an-address", ["serve", "--host", "example"], TOKENS, "--host: expected an IP address"),
    ("serve-cert-without-key", ["serve", "--tls-cert", "/nonexistent.pem"], TOKENS,
     "--tls-cert and --tls-key go together"),
    ("serve-missing-cert", ["serve", "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"], TOKENS,
     "no such file"),
    ("plan-format", ["plan", "dongthap", "--format", "xml"], {}, "'xml' is not one of"),
    ("graph-layout", ["export", "graph", "dongthap", "--layout", "spiral"], {}, "'spiral' is not one of"),
    ("no-such-scenario", ["validate", "/nonexistent/province.yml"], {}, "no such scenario file"),
    ("scenario-is-a-directory", ["validate", "/"], {}, "is a directory"),
    ("allocations-is-a-directory", ["validate", "dongthap", "--allocations", "/"], {}, "is a directory"),
    ("unknown-verb", ["melt", "dongthap"], {}, "No such command 'melt'"),
]


@pytest.mark.parametrize("argv,env,message", [c[1:] for c in OPTION_CASES], ids=[c[0] for c in OPTION_CASES])
def test_an_absurd_option_is_refused_before_anything_runs(argv, env, message):
    r = _run(argv, env)
    _refused(r, message)
    assert r.seconds < 15  # type: ignore[attr-defined]


def test_the_cases_cover_at_least_fifty_malformed_inputs():
    assert len(YAML_CASES) + len(ALLOCATION_CASES) + len(OPTION_CASES) >= 50


# -- the reader's contract --------------------------------------------------------------------

def test_the_limits_hold_at_their_boundaries():
    limits = safe_yaml.Limits(max_bytes=1000, max_depth=5, max_nodes=50)
    assert safe_yaml.parse("a: [[[[1]]]]", "t", limits) == {"a": [[[[1]]]]}  # depth 5
    with pytest.raises(InputError, match=r"a\[0\]\[0\]\[0\]\[0\]: line 1: nested deeper than 5"):
        safe_yaml.parse("a: [[[[[1]]]]]", "t", limits)
    ten = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
    assert safe_yaml.parse(ten + "b: [*a, *a, *a]\n", "t", limits)["b"][2][9] == 1  # 1+11+1+1+3*11+3 = 50
    with pytest.raises(InputError, match="more than 50 values"):
        safe_yaml.parse(ten + "b: [*a, *a, *a, *a]\n", "t", limits)
    with pytest.raises(InputError, match="larger than"):
        safe_yaml.parse("x" * 1001, "t", limits)
    assert safe_yaml.parse("# only a comment\n", "t", empty=None) is None


YAML_ALPHABET = st.sampled_from(list("ab01:-[]{},&*!|>'\"#?%@`\n\t ") + ["- ", ": ", "&a ", "*a", "<<: ", "!!", "---"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(YAML_ALPHABET, max_size=80).map("".join))
def test_any_text_gives_data_or_an_input_error(text):
    try:
        safe_yaml.parse(text, "fuzz")
    except InputError as exc:
        assert exc.problems and all(p.message for p in exc.problems)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text("abcxyz -_.", max_size=12),
                    st.floats(allow_nan=False, allow_infinity=False, width=32))
documents = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=6), kids, max_size=4), max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(documents)
def test_what_pyyaml_writes_reads_back_the_same(data):
    text = yaml.safe_dump(data)
    assert safe_yaml.parse(text, "fuzz", empty=None) == data


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.sampled_from(["[", "{a: "]))
def test_nesting_is_refused_exactly_past_the_limit(depth, opener):
    closer = "]" if opener == "[" else "}"
    text = "x: " + opener * depth + "1" + closer * depth
    if depth <= safe_yaml.LIMITS.max_depth - 1:
        assert safe_yaml.parse(text, "fuzz")["x"] is not None
    else:
        with pytest.raises(InputError, match="nested deeper than"):
            safe_yaml.parse(text, "fuzz")


# -- interrupted verbs leave no worker behind ---------------------------------------------------

def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killing_simulate_leaves_no_worker_process(tmp_path, sig):
    proc = subprocess.Popen([str(EGOVLAB), "simulate", "dongthap", "--replications", "10", "--peak-minutes", "600",
                             "--out", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(workers := _children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(workers) >= 2, "simulate started no worker processes"
        proc.send_signal(sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), f"workers left after {sig.name}"
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
