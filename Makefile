# The README's two commands: `make run` and `make test`. Both set up what is missing first.
SCENARIO ?= inventory/dongthap.yml
SUITE ?= inventory/dongthap.tests.yml
OUT ?= out
EGOVLAB := .venv/bin/egovlab
PYTEST_ARGS ?=
STEPS := $(OUT)/steps.tsv
STEP := @scripts/step.sh $(STEPS)

.PHONY: setup run test bench clean

setup:
	@scripts/setup.sh

## The main job on the built-in Đồng Tháp scenario: validate, show, plan, export, prove the
## controller's program equals the policy (verify, no lab) and what every failure would do
## (analyze), then bring the province up, probe it against its intended policy, cut a redundant
## link, tear it down; run the province's own test suite on it (egovlab test, JUnit; its last
## test a failover drill on the real services, Ansible-deployed, against the simulation);
## then its capacity (peak hour and a year with failures), its disaster-recovery options by cost,
## its growth to the 2025/2030 targets and a short screening of which assumption decides what;
## a table of each step's wall time at the end.
run: setup
	@rm -f $(STEPS)
	$(STEP) validate $(EGOVLAB) validate $(SCENARIO)
	$(STEP) show $(EGOVLAB) show $(SCENARIO)
	$(STEP) plan $(EGOVLAB) plan $(SCENARIO)
	$(STEP) export $(EGOVLAB) export ansible-inventory $(SCENARIO) -o $(OUT)/inventory.yml
	$(STEP) graph $(EGOVLAB) export graph $(SCENARIO) -o $(OUT)/topology
	$(STEP) verify $(EGOVLAB) verify $(SCENARIO) --json $(OUT)/verify.json
	$(STEP) analyze $(EGOVLAB) analyze resilience $(SCENARIO) --json $(OUT)/resilience.json
	$(STEP) check $(EGOVLAB) check $(SCENARIO) --json $(OUT)/check.json --failover h-cao-lanh--core-1 --ovs-shards 24
	$(STEP) test $(EGOVLAB) test $(SCENARIO) $(SUITE) --junit $(OUT)/tests.xml --json $(OUT)/tests.json --ovs-shards 24
	$(STEP) simulate $(EGOVLAB) simulate $(SCENARIO) --replications 10 --out $(OUT)
	$(STEP) dr $(EGOVLAB) dr $(SCENARIO) --out $(OUT)
	$(STEP) forecast $(EGOVLAB) forecast $(SCENARIO) --replications 2 --peak-minutes 5 --out $(OUT)
	$(STEP) sensitivity $(EGOVLAB) sensitivity $(SCENARIO) --trajectories 2 --replications 1 --peak-minutes 1 --out $(OUT)
	@echo "reports in $(OUT)/: inventory.yml topology.{dot,png} verify.json resilience.json check.json tests.{xml,json} simulation.{json,png} dr.{json,png} forecast.{json,png} sensitivity.json"
	@scripts/step.sh --table $(STEPS)

## The whole test suite, exactly as CI runs it.
test: setup
	.venv/bin/python -m pytest $(PYTEST_ARGS)

## Benchmarks (not tests): figures to benchmarks/results/*.json.
bench: setup
	.venv/bin/python benchmarks/inventory_scale.py
	.venv/bin/python benchmarks/emulation_scale.py
	.venv/bin/python benchmarks/simulation_engine.py
	.venv/bin/python benchmarks/simulation_planning.py
	.venv/bin/python benchmarks/sdn_compile.py
	.venv/bin/python benchmarks/verify.py
	.venv/bin/python benchmarks/sdn_failover.py
	.venv/bin/python benchmarks/ovs_bridges_per_daemon.py
	.venv/bin/python benchmarks/services.py
	.venv/bin/python benchmarks/failover_rto.py
	.venv/bin/python benchmarks/soak.py
	.venv/bin/python benchmarks/stateful_restart.py
	.venv/bin/python benchmarks/provisioning.py
	.venv/bin/python benchmarks/vm_tier.py
	.venv/bin/python benchmarks/api_status.py
	.venv/bin/python benchmarks/napalm_gather.py
	.venv/bin/python benchmarks/lab_record.py
	.venv/bin/python benchmarks/suites.py
	.venv/bin/python benchmarks/probe_matrix.py
	.venv/bin/python benchmarks/teardown.py

clean:
	rm -rf $(OUT) .pytest_cache .hypothesis
