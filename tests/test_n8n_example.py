"""examples/n8n/workflow.json stays importable and says what its README says: a trigger,
POST /runs with the bearer credential and the Wait node's resume URL as callback_url,
the Wait node resumed by a webhook call, and an IF on the run's status with two branches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

WORKFLOW = Path(__file__).resolve().parent.parent / "examples" / "n8n" / "workflow.json"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return json.loads(WORKFLOW.read_text(encoding="utf-8"))


def node(workflow: dict, type_: str) -> dict:
    (found,) = [n for n in workflow["nodes"] if n["type"] == f"n8n-nodes-base.{type_}"]
    return found


def test_every_connection_joins_nodes_that_exist(workflow: dict) -> None:
    names = [n["name"] for n in workflow["nodes"]]
    assert len(names) == len(set(names)) and len({n["id"] for n in workflow["nodes"]}) == len(names)
    for source, outputs in workflow["connections"].items():
        assert source in names
        for branch in outputs["main"]:
            assert all(link["node"] in names for link in branch)
    reached = {
        link["node"] for o in workflow["connections"].values() for b in o["main"] for link in b
    }
    assert set(names) - reached == {node(workflow, "scheduleTrigger")["name"]}, "one trigger"


def test_the_run_is_started_with_the_token_and_the_resume_url(workflow: dict) -> None:
    http = node(workflow, "httpRequest")
    params = http["parameters"]
    assert params["method"] == "POST" and params["url"].endswith("/runs")
    assert params["genericAuthType"] == "httpBearerAuth" and "httpBearerAuth" in http["credentials"]
    assert "callback_url: $execution.resumeUrl" in params["jsonBody"]
    wait = node(workflow, "wait")
    assert workflow["connections"][http["name"]]["main"] == [
        [{"node": wait["name"], "type": "main", "index": 0}]
    ]
    assert wait["parameters"]["resume"] == "webhook" and wait["parameters"]["httpMethod"] == "POST"


def test_the_if_node_branches_on_the_status(workflow: dict) -> None:
    check = node(workflow, "if")
    (condition,) = check["parameters"]["conditions"]["conditions"]
    assert "$json.body?.status" in condition["leftValue"]
    assert condition["rightValue"] == "succeeded"
    yes, no = workflow["connections"][check["name"]]["main"]
    assert [link["node"] for link in yes] == [node(workflow, "noOp")["name"]]
    assert [link["node"] for link in no] == [node(workflow, "stopAndError")["name"]]
