"""A suite run's reports: JUnit XML (what CI systems read), JSON, and the outcome."""
from __future__ import annotations

from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

from .runner import StepResult, TestResult


def outcome(results: list[TestResult]) -> str:
    """passed | failed (an error-level test failed) | lab (the lab itself failed under a test)."""
    if any(r.error for r in results):
        return "lab"
    if any(not r.passed and r.level == "error" for r in results):
        return "failed"
    return "passed"


def _line(step: StepResult) -> str:
    parts = [step.step, f"expected {step.expected}" if step.expected else "", f"predicted {step.predicted}"
             if step.predicted else "", f"measured {step.measured}" if step.measured else ""]
    return "; ".join(p for p in parts if p)


def junit(suite_name: str, scenario: str, results: list[TestResult]) -> str:
    suite = TestSuite(suite_name)
    for r in results:
        case = TestCase(r.name, classname=f"egovlab.{scenario}", time=r.seconds)
        if r.error:
            case.result = [Error(r.error, "lab")]
        elif (step := r.failed_step) is not None:
            kind = "warning" if r.level == "warning" else "failure"
            case.result = [Failure(f"step '{step.step}': expected {step.expected}, measured {step.measured}",
                                   kind)]
        case.system_out = "\n".join(_line(s) + (f" [{'PASS' if s.passed else 'FAIL'}]" if s.passed is not None
                                                else "") for s in r.steps)
        suite.add_testcase(case)
    xml = JUnitXml()
    xml.add_testsuite(suite)
    return xml.tostring().decode() if isinstance(xml.tostring(), bytes) else xml.tostring()


def as_json(suite_name: str, scenario: str, results: list[TestResult]) -> dict:
    disagree = [(r.name, s.step) for r in results for s in r.steps if s.model_agrees is False]
    return {"suite": suite_name, "scenario": scenario, "outcome": outcome(results),
            "passed": sum(r.passed for r in results), "failed": sum(not r.passed for r in results),
            "model_disagrees": [{"test": t, "step": s} for t, s in disagree],
            "seconds": round(sum(r.seconds for r in results), 2), "tests": [r.as_json() for r in results]}
