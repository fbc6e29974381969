"""A schemathesis check of egovlab's own (SCHEMATHESIS_HOOKS=tests.schemathesis_hooks): no answer
carries a Python traceback or a path on the server's filesystem."""
import re

import schemathesis

LEAKS = re.compile(r"Traceback \(most recent call last\)|File \"/|(?<![\w.:])/(?:root|work|home|tmp|var|usr|opt|etc|"
                   r"srv|proc)/[\w.-]")


@schemathesis.check
def no_traceback_or_server_path(ctx, response, case):
    found = LEAKS.search(response.text or "")
    if found:
        raise AssertionError(f"the answer leaks {found[0]!r}: ...{response.text[max(0, found.start() - 80):found.end() + 80]}")
