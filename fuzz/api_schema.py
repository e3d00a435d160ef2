"""Schema-driven fuzzing of the triage API with schemathesis: the long run (by hand, not in CI).

    .venv/bin/python fuzz/api_schema.py --max-examples 1000
    .venv/bin/python fuzz/api_schema.py --max-examples 200 --seconds 600 --seed 8

It trains a small champion in a temporary folder, starts the service in this process (over
ASGI, with its lifespan: model, database, audit writer) and sends every operation of the
service's OpenAPI schema generated requests, each with a valid key of the role the operation
needs: first schemathesis' coverage cases (boundaries, missing and mistyped fields, unexpected
methods), then random cases that the schema admits and random cases that break it. No answer
may be a 5xx; every answer must match the schema (a documented status code, its content type,
its body schema); and the key must be accepted, which proves ``OPERATION_ROLES`` right. At the
end, every score's audit record must have been written (none left in the audit spool).

``--max-examples`` is the number of random cases per operation and kind (valid, invalid) in one
round; with ``--seconds``, rounds with fresh seeds follow one another until the time is spent.
The service's records go to a SQLite file in the temporary folder, or to ``--database-url``
(give it a scratch database: keys and scores are written there). Prints one line per operation
(cases, failing cases, 5xx, the status codes seen) and every distinct failure with a curl
command that replays it (keys filtered out); exits 1 on any failure.

tests/serving/test_api_fuzz.py runs the same driver briefly, with a fixed seed, in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import math
import os
import random
import sys
import tempfile
import time
import traceback
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, BaseSchema, Case, CheckContext, GenerationMode, Response
from schemathesis.checks import (
    load_all_checks,
    negative_data_rejection,
    positive_data_acceptance,
)
from schemathesis.core.result import Err
from schemathesis.errors import FailureGroup
from schemathesis.python import asgi

from serving.schemas import FEEDBACK_RULES
from serving.worklist_records import NOT_AN_ASSIGNEE

# The role whose key each operation is sent with: the least one it admits (None: no key).
OPERATION_ROLES: dict[str, str | None] = {
    "POST /v1/score": "scorer",
    "POST /v1/ingest/835": "scorer",
    "GET /v1/denials/{denial_id}": "reviewer",
    "POST /v1/feedback": "reviewer",
    "GET /v1/worklist": "reviewer",
    "GET /v1/worklist/plan": "reviewer",
    "POST /v1/worklist/assignment": "reviewer",
    "POST /v1/worklist/status": "reviewer",
    "POST /v1/admin/reload": "admin",
    "GET /v1/openapi.json": "reviewer",  # any valid key
    "GET /metrics": "admin",
    "GET /healthz": None,
    "GET /readyz": None,
}
PHASES = ("coverage", *(mode.value for mode in GenerationMode))  # coverage, positive, negative
Progress = Callable[[str], None]


def key_accepted(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """The key sent was valid and of a role the operation admits; otherwise every case stopped
    at the key check and nothing behind it was fuzzed."""
    if response.status_code in (401, 403):
        raise AssertionError(
            f"the key sent was refused with {response.status_code}: "
            f"OPERATION_ROLES names the wrong role for {case.operation.label}"
        )
    return None


# What a request can break that a JSON Schema cannot state: the contract's rules across fields,
# and an upload being an X12 835 at all. A schema-valid request refused for these alone is right
# to be refused; refused for anything else, it is a finding.
RULES_ACROSS_FIELDS = (
    frozenset({"exceeds billed_amount", "after denial_date", "duplicate of an earlier row"})
    | FEEDBACK_RULES  # feedback's outcome against itself and against the denial's score
    | {NOT_AN_ASSIGNEE}  # an assignee must be an active key, which no schema can know
)


def refused_for_what_no_schema_says(response: Response, case: Case) -> bool:
    if response.status_code != 422:
        return False
    detail = response.json().get("detail")
    if case.operation.label == "POST /v1/ingest/835":
        return isinstance(detail, str)  # the remittance named, and why it cannot be read
    return isinstance(detail, list) and all(p.get("msg") in RULES_ACROSS_FIELDS for p in detail)


def positive_data_accepted(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """schemathesis' ``positive_data_acceptance``, except for refusals on grounds the schema
    cannot express (:func:`refused_for_what_no_schema_says`)."""
    if refused_for_what_no_schema_says(response, case):
        return None
    return positive_data_acceptance(ctx, response, case)


def negative_data_refused(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """schemathesis' ``negative_data_rejection``, counting 413 as a refusal: a list longer than
    the schema's ``maxItems`` is too large a request, and says so."""
    if response.status_code == 413:
        return None
    return negative_data_rejection(ctx, response, case)


def all_checks() -> list[Any]:
    """Every check schemathesis has (server errors, conformance of statuses, content types,
    headers and bodies, positive data accepted, negative data refused, required headers,
    unsupported methods, ignored auth...), the data checks as above, and ours."""
    load_all_checks()
    replaced = {positive_data_acceptance: positive_data_accepted}
    replaced[negative_data_rejection] = negative_data_refused
    checks = [replaced.get(check, check) for check in schemathesis.checks.CHECKS.get_all()]
    return [*checks, key_accepted]


CHECKS = all_checks()


class UndeclaredOperations(LookupError):
    """The schema holds operations ``OPERATION_ROLES`` does not name, or the reverse."""


class _TimeUp(Exception):
    """The run's time is spent: raised out of a case to end the run where it stands."""


@dataclass(frozen=True)
class FuzzPlan:
    max_examples: int  # random cases per operation and generation mode, per round
    seed: int
    seconds: float | None = None  # run rounds until this much time has passed; else one round


@dataclass
class Finding:
    """One kind of failure of one operation: in how many cases, and the first of them."""

    cases: int
    first: str


@dataclass
class OperationReport:
    label: str
    role: str | None
    cases: Counter[str] = field(default_factory=Counter)  # by phase
    statuses: Counter[int] = field(default_factory=Counter)
    failing_cases: int = 0
    server_errors: int = 0
    findings: dict[str, Finding] = field(default_factory=dict)

    @property
    def total_cases(self) -> int:
        return sum(self.cases.values())

    def failed(self, titles: list[str], reproduction: str) -> None:
        self.failing_cases += 1
        for title in dict.fromkeys(titles):
            finding = self.findings.setdefault(title, Finding(0, reproduction))
            finding.cases += 1


@dataclass
class FuzzRun:
    reports: list[OperationReport]
    audit_backlog: int  # audit records still spooled, not written, when the run ended

    @property
    def failed(self) -> bool:
        return self.audit_backlog > 0 or any(report.failing_cases for report in self.reports)


# ---------------------------------------------------------------------------- the driver


def load_schema(app: Any) -> BaseSchema:
    """The app's OpenAPI schema, read from the app object rather than over HTTP, so whichever
    key the schema's own route asks for does not matter; requests then go to the app over
    ASGI, in this process."""
    schema = schemathesis.openapi.from_dict(
        copy.deepcopy(app.openapi()), config=schemathesis.Config()
    )
    schema.app = app
    return schema


def schema_operations(schema: BaseSchema) -> list[APIOperation]:
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operations.append(result.ok())
    return operations


def fuzz_service(
    app: Any, keys: dict[str, str], plan: FuzzPlan, progress: Progress = lambda _: None
) -> FuzzRun:
    """Fuzz every operation of ``app``'s schema; ``keys`` holds one valid key per role.

    Audit records are written behind the answers, where no check sees them: at the end, every
    one must have been written, none left in the spool. The app's lifespan runs from the first
    request to the end of the run, and is ended here (schemathesis would otherwise keep it until
    the process exits)."""
    operations = schema_operations(load_schema(app))
    _require_declared_roles({operation.label for operation in operations})
    reports = [OperationReport(op.label, OPERATION_ROLES[op.label]) for op in operations]
    stop_at = time.monotonic() + plan.seconds if plan.seconds else math.inf
    with asgi.get_client(app) as client:
        try:
            for round_number in _rounds(plan, stop_at):
                for operation, report in zip(operations, reports, strict=True):
                    sender = _Sender(client, _key_header(keys, report.role), report, stop_at)
                    _fuzz_operation(operation, sender, plan, round_number)
                    progress(f"round {round_number + 1}: {_summary_line(report)}")
        except _TimeUp:
            progress("time is up")
        try:
            backlog = _audit_backlog(client, _key_header(keys, "reviewer"))
        finally:
            asgi.shutdown_lifespans()
    return FuzzRun(reports, backlog)


def _audit_backlog(client: asgi.ASGIClient, reviewer: dict[str, str]) -> int:
    """Audit records spooled because they could not be written. Reading a denial first waits
    for the records of every request answered before it."""
    client.get("/v1/denials/audit-flush", headers=reviewer)
    return int(client.get("/readyz").json()["audit_records_spooled"])


def _require_declared_roles(labels: set[str]) -> None:
    undeclared = sorted(labels - OPERATION_ROLES.keys())
    stale = sorted(OPERATION_ROLES.keys() - labels)
    if undeclared or stale:
        raise UndeclaredOperations(
            f"operations without a role in OPERATION_ROLES: {undeclared or 'none'}; "
            f"roles of operations the schema no longer has: {stale or 'none'} "
            f"(fuzz/api_schema.py names the role each operation is sent with)"
        )


def _rounds(plan: FuzzPlan, stop_at: float) -> Iterator[int]:
    round_number = 0
    while True:
        yield round_number
        round_number += 1
        if plan.seconds is None or time.monotonic() >= stop_at:
            return


def _key_header(keys: dict[str, str], role: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {keys[role]}"} if role else {}


@dataclass
class _Sender:
    """Sends cases of one operation with its key, checks the answers, and counts."""

    client: asgi.ASGIClient
    headers: dict[str, str]
    report: OperationReport
    stop_at: float

    def __call__(self, case: Case, phase: str) -> None:
        if time.monotonic() >= self.stop_at:
            raise _TimeUp
        self.report.cases[phase] += 1
        try:
            response = case.call(session=self.client, headers=self.headers)
        except requests.RequestException as exc:  # refused before it reached the app
            self.report.failed([f"not sent: {type(exc).__name__}"], _trace(exc))
            return
        except Exception as exc:
            # Behind a server, serving.errors answers this 503; in process the exception
            # itself comes out, with the trace that says where.
            self.report.server_errors += 1
            self.report.failed([f"unhandled {type(exc).__name__}: {_first_line(exc)}"], _trace(exc))
            return
        self.report.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.report.server_errors += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=self.headers)
        except FailureGroup as group:
            self.report.failed([failure.title for failure in group.exceptions], str(group))


def _fuzz_operation(
    operation: APIOperation, send: _Sender, plan: FuzzPlan, round_number: int
) -> None:
    if round_number == 0:  # coverage cases are the same every round
        for case in _coverage_cases(operation):
            send(case, "coverage")
    for mode in GenerationMode:
        seed = zlib.crc32(f"{plan.seed}:{round_number}:{operation.label}:{mode.value}".encode())
        _random_cases(operation, mode, plan.max_examples, seed, send)


def _coverage_cases(operation: APIOperation) -> Iterator[Case]:
    schema = operation.schema
    return schema.iter_coverage_cases(
        operation,
        generation_modes=list(GenerationMode),
        generation_config=schema.config.generation_for(operation=operation, phase="coverage"),
    )


def _random_cases(
    operation: APIOperation, mode: GenerationMode, count: int, seed: int, send: _Sender
) -> None:
    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=count,
        database=None,  # a run depends on its seed alone, never on an earlier run's examples
        deadline=None,
        phases=[Phase.generate],  # failures are collected, not raised: nothing to shrink
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def one_case(case: Case) -> None:
        send(case, mode.value)

    # Unsatisfiable: nothing to break (no parameters, no body); its other cases remain.
    with contextlib.suppress(Unsatisfiable):
        one_case()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:160]


def _trace(exc: BaseException) -> str:
    """Where the app raised, and the curl command schemathesis attached to reproduce it."""
    return "".join(traceback.format_exception(exc, limit=-4))


# ---------------------------------------------------------------------------- the report


def _summary_line(report: OperationReport) -> str:
    return (
        f"{report.label}: {report.total_cases:,} cases, {report.failing_cases:,} failing, "
        f"{report.server_errors:,} 5xx"
    )


def format_table(reports: list[OperationReport]) -> str:
    """One line per operation, then the totals."""
    head = ("operation", "role", "cases", *PHASES, "failing", "5xx", "statuses seen")
    rows = [head, *(_table_row(report) for report in reports), _totals_row(reports)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(head))]
    return "\n".join(_aligned(row, widths) for row in rows)


def _aligned(row: tuple[str, ...], widths: list[int]) -> str:
    """Names left, counts right, the status codes last and free."""
    names = [cell.ljust(width) for cell, width in zip(row[:2], widths, strict=False)]
    counts = [cell.rjust(width) for cell, width in zip(row[2:-1], widths[2:-1], strict=True)]
    return "  ".join([*names, *counts, row[-1]]).rstrip()


def _table_row(report: OperationReport) -> tuple[str, ...]:
    statuses = " ".join(f"{code}:{n}" for code, n in sorted(report.statuses.items()))
    return (
        report.label,
        report.role or "-",
        f"{report.total_cases:,}",
        *(f"{report.cases[phase]:,}" for phase in PHASES),
        f"{report.failing_cases:,}",
        f"{report.server_errors:,}",
        statuses,
    )


def _totals_row(reports: list[OperationReport]) -> tuple[str, ...]:
    return (
        "total",
        "",
        f"{sum(r.total_cases for r in reports):,}",
        *(f"{sum(r.cases[phase] for r in reports):,}" for phase in PHASES),
        f"{sum(r.failing_cases for r in reports):,}",
        f"{sum(r.server_errors for r in reports):,}",
        "",
    )


def format_findings(reports: list[OperationReport], limit: int = 4000) -> str:
    """Every distinct failure with the first case that showed it, cut to ``limit`` characters."""
    blocks = [
        f"=== {report.label}: {title} ({finding.cases:,} cases)\n{finding.first[:limit]}"
        for report in reports
        for title, finding in report.findings.items()
    ]
    return "\n\n".join(blocks)


# ---------------------------------------------------------------------------- the script


def train_champion(folder: Path, rows: int, seed: int) -> Path:
    """A registry under ``folder / "data"`` whose champion was trained on ``rows`` generated
    denials with the shipped specs; returns that data directory."""
    from training.run import TrainingOptions, train
    from training.synthetic import generate_history

    os.environ.pop("MLFLOW_TRACKING_URI", None)  # the registry is the temporary one, never yours
    history = generate_history(rows, seed, folder / "history.parquet")
    options = TrainingOptions(data=history, data_dir=folder / "data", seed=seed)
    make_champion(options.data_dir, train(options).record.model_version)
    return options.data_dir


def make_champion(data_dir: Path, version: str) -> None:
    """The champion alias on ``version`` without the promotion gates: fuzzing needs a model
    that answers, not a good one, and a small model may miss the gates."""
    from mlflow.tracking import MlflowClient

    from training.tracking import CHAMPION, MODEL_NAME, configure_tracking

    configure_tracking(data_dir)
    MlflowClient().set_registered_model_alias(MODEL_NAME, CHAMPION, version)


def issue_keys(database_url: str) -> dict[str, str]:
    """One new key per role, in the service's (migrated) database."""
    from serving.auth import ROLES
    from serving.database import make_engine, session_factory, upgrade_database
    from serving.repository import create_api_key

    upgrade_database(database_url)
    engine = make_engine(database_url)
    run = uuid.uuid4().hex[:8]  # names are unique per database, which may be reused
    try:
        with session_factory(engine)() as session:
            return {role: create_api_key(session, role, f"fuzz-{run}-{role}")[0] for role in ROLES}
    finally:
        engine.dispose()


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--max-examples",
        type=int,
        default=1000,
        help="random cases per operation, valid and invalid each, per round [1000]",
    )
    parser.add_argument(
        "--seconds", type=float, help="run rounds with fresh seeds until this time is spent"
    )
    parser.add_argument("--seed", type=int, help="replay a run's cases [random, printed]")
    parser.add_argument("--rows", type=int, default=20_000, help="denials to train on [20000]")
    parser.add_argument("--database-url", help="a scratch database for the service's records")
    return parser


def main(argv: list[str] | None = None) -> int:
    from denial_triage.settings import Settings
    from serving.app import create_app

    args = _arguments().parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    plan = FuzzPlan(max_examples=args.max_examples, seed=seed, seconds=args.seconds)
    with tempfile.TemporaryDirectory(prefix="fuzz-api-") as folder:
        data_dir = train_champion(Path(folder), args.rows, seed=7)
        # Never a database from the environment: the run writes keys and scores.
        database_url = args.database_url or f"sqlite:///{(data_dir / 'fuzz.db').as_posix()}"
        settings = Settings(
            data_dir=data_dir,
            database_url=database_url,
            model_poll_seconds=3600,
            log_level="WARNING",
        )
        keys = issue_keys(database_url)
        started = time.monotonic()
        run = fuzz_service(create_app(settings), keys, plan, progress=_to_stderr)
        seconds = time.monotonic() - started
    print(format_table(run.reports))
    cases = sum(report.total_cases for report in run.reports)
    print(f"\nseed {seed}, {seconds:,.0f} s, {cases:,} cases")
    print(f"audit records left unwritten (spooled): {run.audit_backlog:,}")
    failing = [report for report in run.reports if report.failing_cases]
    if failing:
        print("\n" + format_findings(failing))
    return 1 if run.failed else 0


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":  # the audit worker is a spawned process: it imports this module
    sys.exit(main())
