"""manifest.yml is valid against Slack's published schema and agrees with the code."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from bot.server import SLACK_EVENTS_PATH
from handlers.commands.dispatch import COMMANDS, USAGE
from tests.fakes.slack_spec import slack_spec_dir

MANIFEST_PATH = Path(__file__).resolve().parents[1] / "manifest.yml"

# Adding a scope makes every workspace re-approve the app, so it is a deliberate change here.
EXPECTED_BOT_SCOPES = {
    "commands",
    "chat:write",
    "im:write",
    "users:read",
    "users:read.email",
    "files:write",
}


def _load_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    """Return a validator for the all-versions schema with its versioned schemas resolvable.

    The top-level schema picks a versioned one by `_metadata.major_version` and refers to it
    by a raw.githubusercontent.com URL; the versioned files carry no `$id`, so each is
    registered under the URL of the `$ref` that names it (offline, no network).
    """
    spec_dir = slack_spec_dir()  # ../shared/slack, or $DEALBOT_SLACK_SPEC_DIR
    top = _load_json(spec_dir / "manifest.schema.json")
    registry: Registry = Registry()
    referenced = set(re.findall(r'"\$ref":\s*"(https://[^"]+)"', json.dumps(top)))
    assert referenced, "manifest.schema.json no longer refers to versioned schemas by URL"
    for uri in referenced:
        versioned = _load_json(spec_dir / uri.rsplit("/", 1)[-1])
        registry = registry.with_resource(uri, Resource.from_contents(versioned, DRAFT7))
    validator_class = jsonschema.validators.validator_for(top)
    validator_class.check_schema(top)
    return validator_class(top, registry=registry)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    with MANIFEST_PATH.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _problems(validator: jsonschema.protocols.Validator, document: dict[str, Any]) -> list[str]:
    """Return every error message, including those nested under the schema's oneOf."""
    messages: list[str] = []
    pending = list(validator.iter_errors(document))
    while pending:
        error = pending.pop()
        messages.append(error.message)
        pending.extend(error.context or ())
    return messages


def test_manifest_is_valid_against_slacks_schema(
    validator: jsonschema.protocols.Validator, manifest: dict[str, Any]
) -> None:
    assert _problems(validator, manifest) == []


@pytest.mark.parametrize(
    ("break_it", "complaint"),
    [
        pytest.param(
            lambda m: m["features"].update(slash_comands=[]),
            "'slash_comands' was unexpected",
            id="misspelt-field",
        ),
        pytest.param(
            lambda m: m["features"]["slash_commands"][0].update(should_escape="yes"),
            "'yes' is not of type 'boolean'",
            id="string-for-boolean",
        ),
        pytest.param(
            lambda m: m["display_information"].pop("name"),
            "'name' is a required property",
            id="missing-name",
        ),
        pytest.param(
            lambda m: m["settings"]["interactivity"].update(request_url="example.com/x"),
            "does not match",
            id="url-without-scheme",
        ),
    ],
)
def test_a_broken_manifest_fails_validation(
    validator: jsonschema.protocols.Validator,
    manifest: dict[str, Any],
    break_it: Callable[[dict[str, Any]], object],
    complaint: str,
) -> None:
    # Shows the validation above can fail, and for the reason we broke it.
    broken = copy.deepcopy(manifest)
    break_it(broken)
    problems = _problems(validator, broken)
    assert any(complaint in problem for problem in problems), problems


def test_manifest_targets_major_version_1(manifest: dict[str, Any]) -> None:
    assert manifest["_metadata"]["major_version"] == 1


def test_background_color_is_a_hex_color(manifest: dict[str, Any]) -> None:
    # Slack's schema spells this check "regex", which JSON Schema ignores; Slack does not.
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", manifest["display_information"]["background_color"])


def test_commands_match_the_command_table(manifest: dict[str, Any]) -> None:
    # The table registers the listeners, parses, dispatches and writes /dealbot help.
    declared = [command["command"] for command in manifest["features"]["slash_commands"]]
    assert sorted(declared) == sorted(command.name for command in COMMANDS)
    assert len(declared) == len(set(declared))


def test_help_lists_every_command_in_the_table() -> None:
    assert list(USAGE) == [command.name for command in COMMANDS]
    assert all(USAGE[command.name] for command in COMMANDS)


def test_every_command_escapes_mentions_and_has_a_usage_hint(manifest: dict[str, Any]) -> None:
    for command in manifest["features"]["slash_commands"]:
        # The parser reads <@U123|jane> and <#C123|sales>; unescaped text would lose the ids.
        assert command["should_escape"] is True, command["command"]
        assert command["usage_hint"].strip(), command["command"]
        assert command["description"].strip(), command["command"]


def test_every_request_url_is_the_one_bolt_endpoint(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    urls = [command["url"] for command in manifest["features"]["slash_commands"]]
    urls += [
        settings["interactivity"]["request_url"],
        settings["event_subscriptions"]["request_url"],
    ]
    assert {urlsplit(url).path for url in urls} == {SLACK_EVENTS_PATH}
    # One origin for all of them: the admin replaces it once.
    assert len({urlsplit(url).netloc for url in urls}) == 1


def test_interactivity_on_and_http_mode(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is False


def test_app_home_opened_is_subscribed(manifest: dict[str, Any]) -> None:
    assert "app_home_opened" in manifest["settings"]["event_subscriptions"]["bot_events"]
    app_home = manifest["features"]["app_home"]
    assert app_home["home_tab_enabled"] is True
    # Reminders arrive as DMs, so the messages tab stays on (read-only).
    assert app_home["messages_tab_enabled"] is True
    assert app_home["messages_tab_read_only_enabled"] is True


def test_bot_scopes_are_exactly_the_ones_the_app_needs(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert len(scopes) == len(set(scopes))
    assert set(scopes) == EXPECTED_BOT_SCOPES
    assert "user" not in manifest["oauth_config"]["scopes"]


# Web API methods dealbot calls that need a scope beyond the obvious, with the code that
# calls them: Slack's own spec says which scope each needs, and the manifest must grant it.
SCOPED_CALLS = {
    # bot/crm_setup.py SlackUserDirectory: a CRM owner's Slack user, by email.
    "users.lookupByEmail": "users:read.email",
}


@pytest.mark.parametrize(("method", "scope"), SCOPED_CALLS.items())
def test_the_manifest_grants_the_scope_slack_requires_for_each_call(
    manifest: dict[str, Any], method: str, scope: str
) -> None:
    spec = _load_json(slack_spec_dir() / "web_api_openapi_v2.json")
    operation = next(iter(spec["paths"][f"/{method}"].values()))
    required = {s for entry in operation.get("security", []) for s in entry.get("slackAuth", [])}
    assert scope in required, (method, required)
    assert scope in manifest["oauth_config"]["scopes"]["bot"]


def test_every_shortcut_in_the_manifest_has_a_listener(manifest: dict[str, Any]) -> None:
    from domain.evidence import CITE_SHORTCUT_NAME
    from handlers.blocks import CITE_EVIDENCE_SHORTCUT

    shortcuts = manifest["features"]["shortcuts"]
    assert [(s["callback_id"], s["type"]) for s in shortcuts] == [
        (CITE_EVIDENCE_SHORTCUT, "message")
    ]
    assert shortcuts[0]["name"] == CITE_SHORTCUT_NAME  # the name refusals tell reps to use
