"""The generated Python client (openapi-python-client), unmodified, against a
live server seeded with `intake seed-demo`: run by scripts/python-client.sh.

It creates two cases in a new list (POST /v1/cases, JSON), dry-runs a CSV of
two more (POST /v1/cases/csv, multipart, `dry_run=true`), imports that CSV
for real, and reads everything back: GET /v1/me, the cases page by page with
the cursor, one case by id, and a 404 as a Problem. Each step checks the
status, the parsed model's type and the key fields.

Environment: INTAKE_URL (the server), INTAKE_TOKEN (an integration token
with every scope, as `seed-demo` prints it); PYTHONPATH holds the generated
`intake_client`. Only the standard library besides the client and its
dependencies.
"""

import datetime
import io
import os
import sys
import traceback
import uuid

from intake_client import AuthenticatedClient
from intake_client.api.cases import create_cases, get_case, list_cases, upload_cases_csv
from intake_client.api.integration import get_me
from intake_client.models import (
    AssignmentKind,
    AssignmentSpec,
    Case,
    CaseCsvForm,
    CaseInput,
    CaseInputDataType0,
    CasesCreated,
    CasesRequest,
    Channel,
    CsvChecked,
    CsvImported,
    ErrorCode,
    ListSpec,
    Me,
    Outcome,
    PageCase,
    Priority,
    Problem,
)
from intake_client.types import UNSET, File, Unset

STAFF_ID = "DEMO-A1"
EXTERNAL_STAFF_ID = "crm-DEMO-A1"
EVALUATOR = "DEMO-E1"
CATEGORY = "General"
GROUP = "Demo"

# The JSON body: one case by Staff ID, one by External Staff ID.
JSON_CASES = ["py-json-1", "py-json-2"]
JSON_DATA = {"reason": "Billing", "minutes": 12, "callback": True}
# The CSV: the three leading columns, then data columns and two known ones.
CSV_CASES = ["py-csv-1", "py-csv-2"]
CSV = (
    "Staff ID,External Staff ID,Case ID,Reason,Channel,Priority\r\n"
    f"{STAFF_ID},{EXTERNAL_STAFF_ID},{CSV_CASES[0]},Billing,form,low\r\n"
    f"{STAFF_ID},{EXTERNAL_STAFF_ID},{CSV_CASES[1]},Delivery,survey,critical\r\n"
).encode()


class Failed(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failed(what)


def check_eq(actual, expected, what):
    if actual != expected:
        raise Failed(f"{what}: expected {expected!r}, got {actual!r}")


def parsed(response, status, model):
    """The response's parsed body, after checking its status and type."""
    if response.status_code != status:
        raise Failed(f"status {int(response.status_code)}, expected {status}: {response.content[:500]!r}")
    check(
        isinstance(response.parsed, model),
        f"the body parsed as {type(response.parsed).__name__}, expected {model.__name__}",
    )
    return response.parsed


def is_uuid(value):
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def csv_form(**options):
    return CaseCsvForm(
        file=File(payload=io.BytesIO(CSV), file_name="cases.csv", mime_type="text/csv"),
        **options,
    )


class Run:
    def __init__(self, client):
        self.client = client
        self.group_id = None
        self.json_list_id = None
        self.json_ids = {}
        self.csv_list_id = None
        self.csv_ids = {}

    def me(self):
        """GET /v1/me: the demo integration, its group, every scope."""
        me = parsed(get_me.sync_detailed(client=self.client), 200, Me)
        check_eq(me.integration.label, "Demo integration", "integration.label")
        check(is_uuid(me.integration.id), f"integration.id {me.integration.id!r} is a UUID")
        check_eq([g.name for g in me.groups], [GROUP], "groups")
        for scope in ("cases:read", "cases:write"):
            check(scope in me.scopes, f"{scope} in scopes {me.scopes}")
        check(isinstance(me.token.expires_at, datetime.datetime), "token.expires_at is a datetime")
        self.group_id = me.groups[0].id

    def create_cases(self):
        """POST /v1/cases: two cases in a new list of the demo group (201), replayed by its Idempotency-Key."""
        body = CasesRequest(
            cases=[
                CaseInput(
                    external_id=JSON_CASES[0],
                    staff_id=STAFF_ID,
                    channel=Channel.FORM,
                    priority=Priority.HIGH,
                    category=CATEGORY,
                    data=CaseInputDataType0.from_dict(JSON_DATA),
                    occurred_at=datetime.datetime(2026, 11, 20, 14, 5, tzinfo=datetime.UTC),
                ),
                CaseInput(external_id=JSON_CASES[1], external_staff_id=EXTERNAL_STAFF_ID),
            ],
            list_=ListSpec(
                name="Python client (JSON)",
                assignment=AssignmentSpec(kind=AssignmentKind.GROUP, id=str(self.group_id)),
            ),
        )
        key = str(uuid.uuid4())
        created = parsed(
            create_cases.sync_detailed(client=self.client, body=body, idempotency_key=key), 201, CasesCreated
        )
        check_eq((created.created, created.updated, created.skipped), (2, 0, 0), "created, updated, skipped")
        check_eq([c.external_id for c in created.cases], JSON_CASES, "cases[].external_id")
        check_eq({c.outcome for c in created.cases}, {Outcome.CREATED}, "cases[].outcome")
        check(all(is_uuid(c.id) for c in created.cases), "cases[].id are UUIDs")
        check(is_uuid(created.list_id), f"list_id {created.list_id!r} is a UUID")
        # The same request with the same Idempotency-Key (a header
        # parameter): the first answer, replayed.
        again = create_cases.sync_detailed(client=self.client, body=body, idempotency_key=key)
        check_eq(parsed(again, 201, CasesCreated).cases, created.cases, "the replayed answer's cases")
        check_eq(again.headers.get("Idempotent-Replayed"), "true", "Idempotent-Replayed")
        self.json_list_id = created.list_id
        self.json_ids = {c.external_id: c.id for c in created.cases}

    def csv_dry_run(self):
        """POST /v1/cases/csv, dry_run=true: would create two, writes nothing (200)."""
        response = upload_cases_csv.sync_detailed(client=self.client, body=csv_form(dry_run=True))
        checked = parsed(response, 200, CsvChecked)
        check_eq(checked.valid, True, "valid")
        check_eq(
            (checked.would_create, checked.would_update, checked.would_skip),
            (2, 0, 0),
            "would_create, would_update, would_skip",
        )
        check_eq(checked.warnings, [], "warnings")
        check_eq(checked.detected.delimiter, ",", "detected.delimiter")
        check_eq(checked.detected.encoding.lower(), "utf-8", "detected.encoding")
        for external_id in CSV_CASES:
            page = parsed(
                list_cases.sync_detailed(client=self.client, external_id=external_id), 200, PageCase
            )
            check_eq(page.items, [], f"cases with external_id {external_id} after the dry run")

    def csv_import(self):
        """POST /v1/cases/csv: the same file into a new list for an evaluator (201)."""
        form = csv_form(list_name="Python client (CSV)", assign_evaluator=EVALUATOR)
        imported = parsed(upload_cases_csv.sync_detailed(client=self.client, body=form), 201, CsvImported)
        check_eq(
            (imported.created, imported.updated, imported.skipped), (2, 0, 0), "created, updated, skipped"
        )
        check_eq(imported.list_.name, "Python client (CSV)", "list.name")
        check_eq(imported.list_.case_count, 2, "list.case_count")
        check_eq(
            (imported.list_.assignment.kind, imported.list_.assignment.id),
            ("evaluator", EVALUATOR),
            "list.assignment",
        )
        check_eq([c.external_id for c in imported.cases], CSV_CASES, "cases[].external_id")
        check_eq([c.line for c in imported.cases], [2, 3], "cases[].line")
        check_eq({c.outcome for c in imported.cases}, {Outcome.CREATED}, "cases[].outcome")
        check_eq(imported.warnings, [], "warnings")
        self.csv_list_id = imported.list_.id
        self.csv_ids = {c.external_id: c.id for c in imported.cases}

    def list_with_cursor(self):
        """GET /v1/cases, one per page, following next_cursor: the four cases, in order."""
        seen, cursor, pages = [], UNSET, 0
        while True:
            page = parsed(list_cases.sync_detailed(client=self.client, limit=1, cursor=cursor), 200, PageCase)
            pages += 1
            check(pages <= 10, "the cursor ends")
            check(len(page.items) <= 1, f"{len(page.items)} items on a page of limit 1")
            # The page's items are the one Case model (Page_Case's items a
            # $ref), not a copy of it.
            for item in page.items:
                check(isinstance(item, Case), f"a page's item is a {type(item).__name__}, not a Case")
            seen += [(item.external_id, item.id) for item in page.items]
            if page.next_cursor is None or isinstance(page.next_cursor, Unset):
                break
            check(isinstance(page.next_cursor, str) and page.next_cursor, "next_cursor is a string")
            cursor = page.next_cursor
        ids = {**self.json_ids, **self.csv_ids}
        check_eq([external_id for external_id, _ in seen], JSON_CASES + CSV_CASES, "external_ids read back")
        check_eq({external_id: case_id for external_id, case_id in seen}, ids, "ids read back")
        by_list = parsed(
            list_cases.sync_detailed(client=self.client, list_id=self.csv_list_id), 200, PageCase
        )
        check_eq([item.external_id for item in by_list.items], CSV_CASES, "the CSV list's cases")

    def get_case(self):
        """GET /v1/cases/{id}: the first JSON case, as sent (200)."""
        case_id = self.json_ids[JSON_CASES[0]]
        case = parsed(get_case.sync_detailed(client=self.client, id=case_id), 200, Case)
        check_eq(case.id, case_id, "id")
        check_eq(case.external_id, JSON_CASES[0], "external_id")
        check_eq(case.staff_id, STAFF_ID, "staff_id")
        check_eq(case.external_staff_id, None, "external_staff_id (none sent)")
        check_eq(case.group_id, self.group_id, "group_id")
        check_eq(case.list_id, self.json_list_id, "list_id")
        check_eq(str(case.channel), "form", "channel")
        check_eq(str(case.priority), "high", "priority")
        check_eq(case.category, CATEGORY, "category")
        check_eq(
            case.occurred_at,
            datetime.datetime(2026, 11, 20, 14, 5, tzinfo=datetime.UTC),
            "occurred_at",
        )
        check_eq(case.data.to_dict(), JSON_DATA, "data")
        check(isinstance(case.created_at, datetime.datetime), "created_at is a datetime")
        by_external = get_case.sync_detailed(client=self.client, id=self.json_ids[JSON_CASES[1]])
        check_eq(int(by_external.status_code), 200, "status of the case sent by External Staff ID")
        check_eq(
            (by_external.parsed.staff_id, by_external.parsed.external_staff_id),
            (STAFF_ID, EXTERNAL_STAFF_ID),
            "the Staff ID found by the External Staff ID",
        )
        csv_case = get_case.sync_detailed(client=self.client, id=self.csv_ids[CSV_CASES[1]])
        check_eq(int(csv_case.status_code), 200, "status of a CSV case")
        check_eq(csv_case.parsed.list_id, self.csv_list_id, "the CSV case's list_id")
        check_eq(csv_case.parsed.data.to_dict(), {"Reason": "Delivery"}, "the CSV case's data")

    def not_found(self):
        """GET /v1/cases/{id} of no case: 404, a Problem with its code."""
        problem = parsed(get_case.sync_detailed(client=self.client, id=uuid.uuid4()), 404, Problem)
        check_eq(problem.code, ErrorCode.CASE_NOT_FOUND, "code")
        check_eq(problem.status, 404, "status")
        check(problem.request_id, "request_id is set")


def main():
    client = AuthenticatedClient(
        base_url=os.environ["INTAKE_URL"], token=os.environ["INTAKE_TOKEN"], timeout=30.0
    )
    run = Run(client)
    steps = [
        run.me,
        run.create_cases,
        run.csv_dry_run,
        run.csv_import,
        run.list_with_cursor,
        run.get_case,
        run.not_found,
    ]
    passed = failed = 0
    with client:
        for step in steps:
            name = step.__name__
            if failed:
                # Each step builds on the ones before.
                print(f"SKIP {name}")
                failed += 1
                continue
            try:
                step()
            except Exception as e:  # noqa: BLE001 — any error fails the step
                failed += 1
                print(f"FAIL {name}: {step.__doc__.splitlines()[0]}")
                if isinstance(e, Failed):
                    print(f"  {e}")
                else:
                    traceback.print_exc()
            else:
                passed += 1
                print(f"ok   {name}: {step.__doc__.splitlines()[0]}")
    print(f"python-client: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
