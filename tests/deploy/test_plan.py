"""The deploy mode from the diff: the handbook's "when to hot-reload" table."""

from __future__ import annotations

from botops.deploy.plan import plan_deploy


def test_only_cog_files_are_a_hot_reload_of_exactly_those_extensions() -> None:
    plan = plan_deploy(["cogs/greet.py", "cogs/music.py"], package="cogs")

    assert plan.mode == "reload"
    assert plan.reload == ("cogs.greet", "cogs.music")
    assert not plan.reload_all


def test_a_new_cog_is_loaded_and_a_deleted_one_unloaded() -> None:
    plan = plan_deploy(
        ["cogs/new.py", "cogs/old.py"], package="cogs", added=["cogs/new.py"], deleted=["cogs/old.py"]
    )

    assert (plan.mode, plan.load, plan.unload, plan.reload) == ("reload", ("cogs.new",), ("cogs.old",), ())


def test_a_changed_helper_is_forgotten_and_every_extension_reloads() -> None:
    plan = plan_deploy(["cogs/_helpers.py"], package="cogs")

    assert (plan.mode, plan.forget, plan.reload_all) == ("reload", ("cogs._helpers",), True)


def test_core_code_is_a_restart_naming_the_file() -> None:
    plan = plan_deploy(["cogs/greet.py", "botops/bot/core.py"], package="cogs")

    assert plan.mode == "restart"
    assert "botops/bot/core.py is core code" in plan.reasons


def test_a_migration_is_a_restart_that_upgrades_the_schema() -> None:
    plan = plan_deploy(["botops/db/migrations/versions/0005_x.py"], package="cogs")

    assert (plan.mode, plan.migrations, plan.dependencies) == ("restart", True, False)
    assert plan.reasons == ("migrations changed",)


def test_changed_dependencies_are_a_restart_that_installs_them() -> None:
    plan = plan_deploy(["pyproject.toml"], package="cogs")

    assert (plan.mode, plan.dependencies) == ("restart", True)


def test_docs_and_tests_change_nothing_the_bot_runs() -> None:
    plan = plan_deploy(
        ["README.md", "docs/deploy.md", "tests/test_x.py", "features/DEADLOCK-1.md"], package="cogs"
    )

    assert plan.mode == "none"


def test_a_data_file_in_the_cogs_package_needs_no_reload() -> None:
    assert plan_deploy(["cogs/strings.json"], package="cogs").mode == "none"


def test_the_package_setting_decides_what_a_cog_is() -> None:
    assert plan_deploy(["features_pkg/greet.py"], package="features_pkg").mode == "reload"
    assert plan_deploy(["cogs/greet.py"], package="features_pkg").mode == "restart"
