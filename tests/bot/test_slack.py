"""SlackDirectory: the few facts about users that only Slack knows, asked for once."""

from __future__ import annotations

from bot.fake_slack import FakeSlackWebAPI
from bot.slack import SlackDirectory, build_web_client


def _directory(slack_api: FakeSlackWebAPI, *admins: str) -> SlackDirectory:
    client = build_web_client(token="xoxb-test", base_url=slack_api.base_url)
    return SlackDirectory(client=client, configured_admins=admins)


def test_admin_check_and_profile_share_one_users_info_call(slack_api: FakeSlackWebAPI) -> None:
    slack_api.set_user("U1", real_name="Ana Ruiz", is_owner=True, email="ana@sales.example")
    directory = _directory(slack_api)

    assert directory.is_admin("U1") is True
    assert directory.name_and_email("U1") == ("Ana Ruiz", "ana@sales.example")
    assert directory.is_admin("U1") is True

    assert len(slack_api.calls_to("users.info")) == 1


def test_configured_admins_are_admins_without_asking_slack(slack_api: FakeSlackWebAPI) -> None:
    directory = _directory(slack_api, "U0ROOT")

    assert directory.is_admin("U0ROOT") is True
    assert slack_api.calls_to("users.info") == []


def test_a_plain_member_is_no_admin(slack_api: FakeSlackWebAPI) -> None:
    slack_api.set_user("U2", name="ben")

    assert _directory(slack_api).is_admin("U2") is False
