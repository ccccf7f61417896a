"""/v1/samples: the shapes world's sample scenes, listed with their params and served as PNGs."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from diffeditor.cases import CASE_TASKS, sample
from diffeditor.tasks import FILES_BY_TASK, PARAMS_BY_TASK
from tests.service.helpers import multipart

README = Path(__file__).resolve().parents[2] / "README.md"


def test_list_has_one_sample_per_case_task(client: TestClient) -> None:
    r = client.get("/v1/samples")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["name"] for s in body] == list(CASE_TASKS)
    for s in body:
        assert set(s) == {"name", "task", "title", "size", "params", "files"}
        assert s["task"] == sample(s["name"]).engine_task
        assert s["params"]["task"] == s["task"]
        assert s["params"]["max_resolution"] == 128 and s["size"] == 128
        assert s["title"] and len(s["title"]) < 60
        assert s["files"] == {f: f"/v1/samples/{s['name']}/{f}.png" for f in sample(s["name"]).images}
        required, optional = FILES_BY_TASK[s["task"]]
        assert set(required) <= set(s["files"]) <= set(required) | set(optional)
    by_name = {s["name"]: s for s in body}
    assert by_name["resize"]["task"] == "move" and by_name["resize"]["params"]["scale"] != 1


def test_params_are_plain_json_and_valid_for_the_task(client: TestClient) -> None:
    for s in client.get("/v1/samples").json():
        params = s["params"]
        assert json.loads(json.dumps(params)) == params
        model = PARAMS_BY_TASK[s["task"]].model_validate(params)  # extra="forbid": no stray names
        assert model.max_resolution == 128
        assert params["prompt"] == sample(s["name"]).params["prompt"]


@pytest.mark.parametrize("name", CASE_TASKS)
def test_every_file_is_a_png_of_the_sample_size(client: TestClient, name: str) -> None:
    s = next(x for x in client.get("/v1/samples").json() if x["name"] == name)
    for field, url in s["files"].items():
        r = client.get(url)
        assert r.status_code == 200, (url, r.text)
        assert r.headers["content-type"] == "image/png"
        img = Image.open(io.BytesIO(r.content))
        assert img.format == "PNG" and img.size == (s["size"], s["size"]), (field, img.size)
        if field.endswith("mask"):
            assert img.getextrema()[1] > 0, f"{name} {field} is empty"
        assert r.content == client.get(url).content  # rendered once, served the same


def test_a_sample_submits_as_a_valid_edit(client: TestClient) -> None:
    """Every sample's files with its params pass the API's validation (202)."""
    for s in client.get("/v1/samples").json():
        files = {field: client.get(url).content for field, url in s["files"].items()}
        r = client.post("/v1/edits", **multipart({**s["params"], "steps": 4}, files))
        assert r.status_code == 202, (s["name"], r.text)
        assert r.json()["task"] == s["task"]


@pytest.mark.parametrize(
    ("path", "field", "words"),
    [
        ("/v1/samples/nope/image.png", "name", "no sample 'nope'"),
        ("/v1/samples/landmark/mask.png", "field", "has no file 'mask'"),
        ("/v1/samples/paste/params.png", "field", "has no file 'params'"),
    ],
)
def test_unknown_sample_or_file_is_404_in_the_error_shape(
    client: TestClient, path: str, field: str, words: str
) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert set(err) == {"code", "message", "field"}
    assert err["code"] == "not_found" and err["field"] == field and words in err["message"]


def test_other_paths_under_samples_are_plain_404s(client: TestClient) -> None:
    for path in ("/v1/samples/move", "/v1/samples/move/image.jpg"):
        r = client.get(path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_no_key_needed(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_key_hashes="ab" * 32)
    assert client.get("/v1/samples").status_code == 200
    assert client.get("/v1/samples/move/image.png").status_code == 200
    assert client.post("/v1/edits").status_code == 401  # the key is still needed to submit


def test_documented_in_the_openapi_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    listing = schema["paths"]["/v1/samples"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert listing["items"]["$ref"].endswith("/SampleOut")
    props = schema["components"]["schemas"]["SampleOut"]["properties"]
    assert {"name", "task", "title", "params", "files"} <= set(props)
    png = schema["paths"]["/v1/samples/{name}/{field}.png"]["get"]["responses"]
    assert "image/png" in png["200"]["content"]
    assert png["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorOut")


def test_readme_example_uses_the_move_sample() -> None:
    """The README's REST example submits the shipped move sample with its own offset."""
    text = README.read_text()
    assert "/v1/samples/move/image.png" in text and "/v1/samples/move/mask.png" in text
    m = re.search(r"params=(\{\"task\":\"move\".*?\})'", text)
    assert m, "no move params in the README's curl example"
    params = json.loads(m.group(1))
    expected = sample("move").params
    assert params["offset"] == list(expected["offset"]) and params["prompt"] == expected["prompt"]
    # No working size: the server's device default applies (128 on the CPU demo model), so the
    # example answers in seconds there and runs at 768 on a GPU worker.
    assert "max_resolution" not in params
