"""The Prometheus and Grafana files in deploy/: promtool accepts them; they use only metrics a bot exposes.

The metric names are checked against the exposition of a real :class:`Bot` that never connects: it records
commands, an error, a gateway event, a shard's READY, a writer's flush and a REST answer 429 from a local
server, so every family the bot serves is in the text.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncConnection

from botops.backup.schedule import BackupSchedule
from botops.backup.store import create_backup
from botops.bot import Bot
from botops.db import migrate
from botops.db.engine import create_engine
from botops.db.writer import BatchedWriter
from botops.observability.metrics import CommandUse
from botops.settings import load_settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SCRAPE_CONFIG = DEPLOY / "prometheus.yml"
RULES = DEPLOY / "prometheus-rules.yml"
RULE_TESTS = DEPLOY / "prometheus-rules.test.yml"
DASHBOARD = DEPLOY / "grafana-dashboard.json"

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")

METRIC_NAME = re.compile(r"\bbotops_[a-z0-9_]+")
# A metric selector with its label matchers, if any: `botops_guilds{job=~"$job"}`, `up`.
SELECTOR = re.compile(r"\b(?P<name>botops_[a-z0-9_]+|up)\b(?P<matchers>\{[^}]*\})?")
# The series names a family of each type puts in the text format; other types use the family's name.
SERIES_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
# A query variable's query: the label's values in the series the selector picks.
LABEL_VALUES = re.compile(r"label_values\((?P<selector>.+),\s*(?P<label>\w+)\)")
# Grafana's unit ids the dashboard may use (grafana-data's valueFormats/categories.ts).
GRAFANA_UNITS = {"none", "short", "s", "ms", "bytes", "percentunit", "reqps", "ops", "cps", "cpm", "opm"}
# What Grafana puts in place of the dashboard's variables, for promtool to parse the queries.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$job": ".*", "$instance": ".*"}


def promtool(*arguments: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(  # noqa: S603 - promtool from PATH with our own arguments, no shell
        [PROMTOOL, *arguments], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def report(completed: subprocess.CompletedProcess[str]) -> str:
    return f"promtool exited {completed.returncode}:\n{completed.stdout}{completed.stderr}"


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def data_panels() -> Iterator[dict[str, Any]]:
    """Every panel that shows data: rows only group them."""
    for panel in dashboard()["panels"]:
        yield from panel.get("panels", []) if panel["type"] == "row" else [panel]


def panel_queries() -> list[str]:
    """The PromQL of every panel's targets."""
    return [target["expr"] for panel in data_panels() for target in panel["targets"]]


def variable_queries() -> list[str]:
    """The queries of the query variables: ``label_values(<selector>, <label>)``."""
    return [
        variable["definition"]
        for variable in dashboard()["templating"]["list"]
        if variable["type"] == "query"
    ]


def series_names(exposition: str) -> set[str]:
    """Every series name the exposition holds or declares (a family without samples still counts)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in SERIES_SUFFIXES.get(family.type, ("",)))
    return names


async def _write_nothing(_connection: AsyncConnection, _batch: dict[int, int]) -> None:
    pass


async def _answer_429(_request: web.Request) -> web.Response:
    return web.json_response(
        {"message": "You are being rate limited.", "retry_after": 0.1, "global": False},
        status=429,
        headers={"X-RateLimit-Scope": "user"},
    )


@pytest_asyncio.fixture
async def exposition(tmp_path: Path) -> str:
    """The /metrics text of a real, unconnected bot with the levels feature that saw a bit of everything."""
    settings = load_settings(
        None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        log_dir=tmp_path / "logs",
        backup_dir=tmp_path / "backups",
        backup_time="",
    )
    engine = create_engine(settings)
    await migrate.upgrade(engine)
    await create_backup(settings, reason="manual", backup_dir=settings.backup_dir)
    bot = Bot(settings, engine, builtin_extensions=())
    backups = BackupSchedule(bot, settings)
    await backups.start()  # the newest backup's gauges
    try:
        await bot.load_extension("botops.cogs.levels")  # a feature's own counters
        bot.record_command(CommandUse("ping", "slash", "success", None, 0.02))
        bot.record_command(CommandUse("xp", "text", "error", 100, 0.3))
        bot.dispatch("socket_event_type", "MESSAGE_CREATE")
        bot.metrics.gateway.identified(0)
        writer: BatchedWriter[int, int] = BatchedWriter(
            engine, _write_nothing, merge=lambda _older, newer: newer, name="test-rows"
        )
        bot.add_writer(writer)
        writer.add(1, 1)
        await writer.flush()
        app = web.Application()
        app.router.add_post("/api/v10/channels/{channel_id}/messages", _answer_429)
        async with (
            TestServer(app, host="127.0.0.1") as server,
            aiohttp.ClientSession(trace_configs=[bot.metrics.rest_trace()]) as session,
            session.post(server.make_url("/api/v10/channels/123456789012345678/messages")) as response,
        ):
            assert response.status == 429
        return bot.metrics.exposition()[0].decode()
    finally:
        await backups.stop()
        await bot.close()
        await engine.dispose()


# -- promtool --------------------------------------------------------------------------------------------


@needs_promtool
def test_promtool_accepts_the_scrape_config_and_the_rule_file_it_loads() -> None:
    completed = promtool("check", "config", str(SCRAPE_CONFIG))

    assert completed.returncode == 0, report(completed)
    assert "1 rule files found" in completed.stdout, report(completed)


@needs_promtool
def test_promtool_accepts_the_alert_rules() -> None:
    completed = promtool("check", "rules", str(RULES))

    assert completed.returncode == 0, report(completed)


@needs_promtool
def test_the_alert_rules_pass_their_promtool_unit_tests() -> None:
    completed = promtool("test", "rules", str(RULE_TESTS))

    assert completed.returncode == 0, report(completed)


@needs_promtool
def test_promtool_finds_no_lint_problem_in_the_bots_exposition(exposition: str) -> None:
    completed = promtool("check", "metrics", stdin=exposition)

    assert completed.returncode == 0, report(completed)


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    selectors = [LABEL_VALUES.fullmatch(query) for query in variable_queries()]
    assert None not in selectors, variable_queries()
    rules = []
    for number, query in enumerate(panel_queries() + [match["selector"] for match in selectors if match]):
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        rules.append({"record": f"dashboard:query_{number}", "expr": query})
    rule_file = tmp_path / "dashboard-queries.yml"  # JSON is YAML
    rule_file.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")

    completed = promtool("check", "rules", str(rule_file))

    assert completed.returncode == 0, report(completed)


# -- metric names ----------------------------------------------------------------------------------------


def test_every_metric_the_dashboard_queries_is_one_the_bot_exposes(exposition: str) -> None:
    queries = panel_queries() + variable_queries()
    used = {name for query in queries for name in METRIC_NAME.findall(query)}

    assert used, "no botops_ metric found in the dashboard's queries"
    assert used - series_names(exposition) == set()


def test_every_metric_the_alert_rules_use_is_one_the_bot_exposes(exposition: str) -> None:
    # The whole file rather than its `expr:` lines, so an expression written over several lines counts too.
    used = set(METRIC_NAME.findall(RULES.read_text(encoding="utf-8")))

    assert used, "no botops_ metric found in the alert rules"
    assert used - series_names(exposition) == set()


def test_every_dashboard_query_follows_the_job_and_instance_variables() -> None:
    unfiltered = [
        f"{selector.group(0)} in {query}"
        for query in panel_queries()
        for selector in SELECTOR.finditer(query)
        if 'job=~"$job"' not in (selector["matchers"] or "")
        or 'instance=~"$instance"' not in (selector["matchers"] or "")
    ]

    assert unfiltered == []


# -- the dashboard and the scrape config -----------------------------------------------------------------


def test_the_dashboard_is_botops_for_grafana_10_with_a_prometheus_datasource_variable() -> None:
    document = dashboard()
    variables = {variable["name"]: variable for variable in document["templating"]["list"]}

    assert (document["uid"], document["title"]) == ("botops", "botops")
    assert document["schemaVersion"] >= 38  # Grafana 10
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    assert {"job", "instance"} <= variables.keys()


def test_every_dashboard_panel_has_a_title_a_known_unit_and_a_query() -> None:
    incomplete = [
        panel.get("title") or f"panel {panel['id']}"
        for panel in data_panels()
        if not panel.get("title")
        or panel["fieldConfig"]["defaults"].get("unit") not in GRAFANA_UNITS
        or not panel.get("targets")
        or panel["datasource"]["uid"] != "${datasource}"
    ]

    assert incomplete == []


def test_the_scrape_config_holds_no_secret_of_its_own() -> None:
    inline_secret = re.compile(r"^\s*(?:credentials|bearer_token|password)\s*:", re.MULTILINE)
    uncommented = "\n".join(
        line
        for line in SCRAPE_CONFIG.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    )

    assert inline_secret.search(uncommented) is None
