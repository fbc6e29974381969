"""/api/v1/tests: scenario test suites on a lab (`egovlab test` as a job; its result is the
JSON report with the JUnit XML beside it)."""
from fastapi import APIRouter

from egovlab.inventory.errors import EgovlabError
from egovlab.topology.model import emulation_plan

from ..bodies import TestRun
from ..context import BEARER, Ctx, job_views

router = APIRouter(prefix="/api/v1/tests", tags=["tests"], dependencies=BEARER)


@router.post("", status_code=202, summary="Run a test suite on the scenario's lab (a job: `egovlab test`)")
def run_tests(ctx: Ctx, body: TestRun) -> dict:
    from egovlab.suites import schema

    sc = ctx.store.load(body.scenario)
    suite = schema.parse(body.suite, "suite", sc, emulation_plan(sc, prefix=body.prefix))  # bad input: 422 now
    names = {t.name for t in suite.tests}
    if unknown := [n for n in body.only if n not in names]:
        raise EgovlabError(f"only: no test named {', '.join(map(repr, unknown))}")
    verb = ["test", ctx.store.path(body.scenario), "{dir}/suite.tests.yml", "--prefix", body.prefix,
            "--json", "{dir}/tests.json", "--junit", "{dir}/tests.xml"]
    for name in body.only:
        verb += ["--only", name]

    def junit(job) -> dict:
        return {"junit": (job.dir / "tests.xml").read_text()}

    return ctx.runner.submit("tests", verb, prefix=body.prefix, params=body.model_dump(exclude={"suite"}),
                             result_name="tests.json", files={"suite.tests.yml": body.suite}, after=junit,
                             ok_codes=(0, 1)).view(with_result=False)


job_views(router, "tests")
