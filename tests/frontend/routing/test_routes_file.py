"""The static routes file: parsed, validated with located errors, reloaded on change."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from clipper.common.errors import ConfigError
from clipper.frontend.routing.discovery.static import StaticFileDiscovery, load_routes
from clipper.testing.timeouts import scaled

ROUTES = """
apps:
  digits:
    latency_slo_ms: 50
    default_output: -1
    models:
      - name: lr
        versions:
          - {version: "1", weight: 90, replicas: ["127.0.0.1:9001"]}
          - {version: "2", weight: 10, replicas: ["127.0.0.1:9002"]}
"""


def test_yaml_with_app_names_taken_from_their_keys(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES)
    table = load_routes(path)
    app = table.apps["digits"]
    assert app.name == "digits"
    assert app.latency_slo_ms == 50
    assert [v.weight for v in app.models[0].versions] == [90, 10]


def test_json_is_read_as_json(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps({"apps": {"a": {"models": [{"name": "m"}]}}}))
    assert load_routes(path).apps["a"].models[0].name == "m"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apps: [1, 2", "not valid YAML"),
        ("- just a list", "must be a mapping"),
        ("apps: {a: {latency_slo_ms: -5}}", r"apps\.a\.latency_slo_ms"),
        ("apps: {a: {modles: []}}", r"apps\.a\.modles: Extra inputs"),
    ],
)
def test_errors_name_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        load_routes(path)
    assert str(path) in error.value.message


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_routes(tmp_path / "nope.yaml")


async def edit_until_yielded(path: Path, text: str, nxt: asyncio.Future[object]) -> object:
    """Write ``text`` until the watch yields it: the watch may not be started yet, and
    an edit made before it starts is never seen. Proves the watcher is running."""
    for _ in range(40):
        await asyncio.to_thread(path.write_text, text)
        done, _ = await asyncio.wait([nxt], timeout=scaled(0.5))
        if done:
            return nxt.result()
    pytest.fail("the routes file watcher never yielded an edit")


async def test_changes_are_yielded_and_bad_edits_keep_the_last_table(tmp_path: Path) -> None:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES)
    tables = aiter(StaticFileDiscovery(path, debounce_ms=10).watch())
    first = await anext(tables)
    # First a change the watcher must see, so the negative check below cannot pass
    # merely because the watcher is not running.
    edited = ROUTES.replace("weight: 90", "weight: 70")
    seen = await edit_until_yielded(path, edited, asyncio.ensure_future(anext(tables)))
    assert seen != first
    nxt = asyncio.ensure_future(anext(tables))
    (tmp_path / "unrelated.log").write_text("ignored")
    path.write_text("apps: {broken")  # invalid: logged, ignored
    await asyncio.sleep(0.3)
    assert not nxt.done()
    replaced = tmp_path / "routes.yaml.tmp"  # the editor way: write aside, rename over
    replaced.write_text(ROUTES.replace("weight: 90", "weight: 50"))
    replaced.rename(path)
    second = await asyncio.wait_for(nxt, timeout=scaled(20))
    assert second != first
    assert second.apps["digits"].models[0].versions[0].weight == 50
