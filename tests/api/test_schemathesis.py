"""Schemathesis runs the API's own OpenAPI schema (issue 15, Done means): requests generated from
/openapi.json for every operation, in both of schemathesis' modes (positive: data the schema
allows; negative: data it forbids), with a valid admin token and without one, against the
real app (ASGI, in process: the same FastAPI app uvicorn serves) over a real SQLite store
holding the demo lattice.

Checks on every response: no server error (``not_a_server_error``: no 5xx), and the response
conforms to the schema: a documented status code, the documented content type, headers and
body (``status_code_conformance``, ``content_type_conformance``,
``response_headers_conformance``, ``response_schema_conformance``). Every request sent is
counted; at least 1,000 in total. Failures are collected over all operations and reported
together (each with the request that reproduces it).
"""
from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from tests.api.conftest import build_api

pytestmark = pytest.mark.slow

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
EXAMPLES = 25  # per operation, generation mode and run: 29 operations x 2 modes x 3 runs x 12, minus exhausted
MIN_REQUESTS = 1000


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    api = build_api(f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'lattice.db'}")
    # without a token: schemathesis generates the Authorization header too (junk tokens, none);
    # with one: it leaves that header alone (negative mode would drop it), so ours is always sent
    untokened = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    tokened = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    tokened.config.generation.update(with_security_parameters=False)
    yield api, {True: tokened, False: untokened}
    api.client.close()
    api.store.close()


def _run(operation, mode: GenerationMode, headers: dict[str, str] | None, sent: Counter, failures: list,
         path: dict[str, str] | None = None, statuses: Counter | None = None) -> None:
    """Up to EXAMPLES generated cases of ``operation`` in ``mode`` (path parameters fixed to ``path``
    where the operation has them), each sent and checked."""
    fixed = {k: v for k, v in (path or {}).items() if f"{{{k}}}" in operation.path} or None

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failing request is reported
              suppress_health_check=list(HealthCheck))
    def one(case):
        sent[operation.label] += 1
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        if statuses is not None:
            statuses[(operation.label, response.status_code)] += 1

    try:
        one()
    except Unsatisfiable:
        # negative mode on an operation whose every input is valid (no parameters and no body, as
        # health or jwks; or only a free-text path parameter): nothing to make invalid. Its
        # positive run has been sent and checked; a positive run must always generate
        assert mode is GenerationMode.NEGATIVE, operation.label
    except (Exception, FailureGroup) as exc:  # noqa: BLE001 - collected: every operation runs, then all are shown
        failures.append(f"{operation.label} [{mode.value}, {'token' if headers else 'no token'}, "
                        f"path {fixed or 'generated'}]: {exc}")


# admin-token: every operation with generated names (mostly unknown lattices: 404s, 422s);
# admin-token-demo: the same with the demo lattice and its gems in the path, so the requests
# reach the routes' work (search, reflect, edits, snapshots); no-token: generated or no
# Authorization header (401s, and the open routes)
RUNS = {"admin-token": (True, False), "admin-token-demo": (True, True), "no-token": (False, False)}


@pytest.mark.parametrize("run", list(RUNS))
def test_generated_requests_conform_and_never_fail(target, run):
    api, schemas = target
    with_token, on_demo = RUNS[run]
    schema = schemas[with_token]
    headers = api.as_("admin") if with_token else None
    sent: Counter = Counter()
    statuses: Counter = Counter()  # (operation, status) -> responses
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25, [op.label for op in operations]  # the whole API, not a part of it
    gems = api.store.list_gems("demo", page=1, page_size=len(operations))[0]["id"].tolist() if on_demo else []
    # deleting the demo lattice goes last, so the other operations find it
    operations.sort(key=lambda op: on_demo and op.label == "DELETE /v1/lattices/{name}")
    for i, operation in enumerate(operations):
        path = {"name": "demo", "gem_id": gems[i % len(gems)]} if on_demo else None
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _run(operation, mode, headers, sent, failures, path, statuses)
    total = sum(sent.values())
    by_status = Counter()
    for (_, status), n in statuses.items():
        by_status[status] += n
    print(f"\nSCHEMATHESIS ({run}): {total} requests over {len(operations)} operations, {len(failures)} failure(s); "
          f"responses by status {dict(sorted(by_status.items()))}")
    assert not failures, "\n\n".join(failures)
    assert set(sent) == {op.label for op in operations}
    # the three runs together send >= MIN_REQUESTS: each one sends at least a third
    assert total * len(RUNS) >= MIN_REQUESTS, sent
    ok = {label for (label, status), _ in statuses.items() if 200 <= status < 300}
    if on_demo:  # the requests reached the routes' work, not only their refusals
        assert {"POST /v1/lattices/{name}/search", "GET /v1/lattices/{name}/gems", "GET /v1/lattices/{name}/snapshot",
                "POST /v1/lattices/{name}/reflect"} <= ok, sorted(ok)
    if with_token:  # the token is always sent: refused only on the token route (bad credentials)
        assert {label for (label, status), _ in statuses.items() if status == 401} <= {"POST /v1/auth/token"}
    else:  # without a token only the open routes answer 2xx
        assert ok <= {"GET /v1/health", "GET /v1/ready", "GET /.well-known/jwks.json", "POST /v1/auth/token"}, ok
