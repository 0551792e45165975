"""The ``--once --json`` document against the JSON Schema that ships in the package
(``tui/data/minertop-once.schema.json``): real output validates, documents with mistakes
don't, and the schema declares every field the output has."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from tests.test_cli import _run, chain_down, rig_site  # noqa: F401
from tui import __version__
from tui.cli import EXIT_PARTIAL
from tui.model import RIG_PROTOCOLS, RIG_STATUSES

SCHEMA_NAME = "minertop-once.schema.json"


def load_schema() -> dict[str, Any]:
    """The schema as installed: a data file of the ``tui.data`` package."""
    text = resources.files("tui.data").joinpath(SCHEMA_NAME).read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


SCHEMA = load_schema()
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def strict(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` on every object type that lists its
    properties (not on the if/then/else refinements): the shipped schema lets a reader of
    an older version pass fields added since; this one fails on any field the schema
    doesn't describe."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        types = schema.get("type", [])
        if "properties" in schema and "object" in ([types] if isinstance(types, str) else
                                                   types) \
                and "additionalProperties" not in schema:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


STRICT = jsonschema.Draft202012Validator(strict(SCHEMA))


def problems(doc: Any, validator: jsonschema.Draft202012Validator = VALIDATOR) -> list[str]:
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in validator.iter_errors(doc))


def assert_valid(doc: Any) -> None:
    assert problems(doc) == []
    assert problems(doc, STRICT) == [], "fields the schema doesn't describe"


@pytest.fixture(scope="module")
def demo_doc() -> dict[str, Any]:
    r = _run("--demo", "--once", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "fields are only ever added" in SCHEMA["description"]


def test_demo_output_validates(demo_doc: dict[str, Any]) -> None:
    assert_valid(demo_doc)
    assert demo_doc["schema_version"] == SCHEMA["properties"]["schema_version"]["const"] == 1
    assert demo_doc["minertop_version"] == __version__
    assert list(demo_doc)[:2] == ["schema_version", "minertop_version"]
    assert demo_doc["errors"] == []
    statuses = {r["status"] for r in demo_doc["rigs"]}
    assert {"ok", "offline", "stuck"} <= statuses  # the demo exercises the enums
    assert any(r["boards_down"] for r in demo_doc["rigs"])
    assert any(r["port"] is not None and r["protocol"] == "whatsminer-v3"
               for r in demo_doc["rigs"])


def test_partial_output_validates(rig_site: Path,  # noqa: F811
                                  demo_doc: dict[str, Any]) -> None:
    r = _run(*chain_down(rig_site, "--json"))
    assert r.returncode == EXIT_PARTIAL, r.stderr
    doc = json.loads(r.stdout)
    assert_valid(doc)
    # the same members as with chain data (view_document lists them for this case)
    assert set(doc) - {"price_error"} == set(demo_doc) - {"price_error"}
    doc["errors"] = []  # partial without saying why: the schema's then-branch says no
    assert any("should be non-empty" in p for p in problems(doc))


def test_the_status_and_protocol_enums_are_the_models() -> None:
    rig = SCHEMA["$defs"]["rig"]["properties"]
    assert rig["status"]["enum"] == list(RIG_STATUSES)
    assert rig["protocol"]["enum"] == [*RIG_PROTOCOLS, None]
    by_status = SCHEMA["$defs"]["site"]["properties"]["rigs_by_status"]
    assert by_status["propertyNames"]["enum"] == list(RIG_STATUSES)


def _broken(doc: dict[str, Any], change: str) -> dict[str, Any]:
    d = copy.deepcopy(doc)
    rig = d["rigs"][0]
    if change == "port as text":
        rig["port"] = str(rig["port"])
    elif change == "host with its port":
        rig["host"] = f"{rig['host']}:{rig['port']}"
    elif change == "unknown status":
        rig["status"] = "down"
    elif change == "boards not a list":
        rig["boards"] = {}
    elif change == "board without index":
        del rig["boards"][0]["index"]
    elif change == "boards_down missing":
        del rig["boards_down"]
    elif change == "margin as text":
        rig["margin_usd_day"] = "-1.78"
    elif change == "no schema_version":
        del d["schema_version"]
    elif change == "schema_version 2":
        d["schema_version"] = 2
    elif change == "errors as a mapping":  # the shape before schema_version 1
        d["errors"] = {"chain": "down"}
    elif change == "error without source":
        d["errors"] = [{"error": "down"}]
    elif change == "null hashrate windows with chain data":
        d["hashrate_ehs"] = None
    elif change == "site without rigs":
        del d["rigs"]
    elif change == "status count as text":
        d["site"]["rigs_by_status"]["ok"] = "45"
    elif change == "count of an unknown status":
        d["site"]["rigs_by_status"]["down"] = 1
    else:
        raise AssertionError(change)
    return d


@pytest.mark.parametrize("change", [
    "port as text", "host with its port", "unknown status", "boards not a list",
    "board without index", "boards_down missing", "margin as text", "no schema_version",
    "schema_version 2", "errors as a mapping", "error without source",
    "null hashrate windows with chain data", "site without rigs", "status count as text",
    "count of an unknown status",
])
def test_a_document_with_a_mistake_fails(demo_doc: dict[str, Any], change: str) -> None:
    assert problems(_broken(demo_doc, change)), change


def test_an_undeclared_field_fails_only_the_strict_check(demo_doc: dict[str, Any]) -> None:
    d = copy.deepcopy(demo_doc)
    d["rigs"][0]["surprise"] = 1
    assert problems(d) == []  # readers of this version accept fields added later
    assert problems(d, STRICT)


# ----------------------------------------------------------------------------- daemon

@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Any]:
    from tests.test_daemon import Proc

    p = Proc(tmp_path, "--demo")
    try:
        yield p
    finally:
        p.kill()


def test_the_daemons_snapshot_validates(daemon: Any) -> None:
    """``GET /api/v1/snapshot`` serves the same document."""
    daemon.wait_for(lambda: daemon.get("/api/v1/snapshot").status_code == 200, timeout=60,
                    what="the first snapshot")
    doc = daemon.get("/api/v1/snapshot").json()
    assert_valid(doc)
    assert doc["schema_version"] == 1 and doc["minertop_version"] == __version__
    assert len(doc["rigs"]) == 48 and doc["errors"] == []
