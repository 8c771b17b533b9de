"""Tests of the fake Slack Web API itself, driven through the real slack_sdk clients."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, SectionBlock
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from bot.fake_slack import FakeSlackWebAPI, PostingLimits, RecordedCall, required_arguments
from tests.fakes.fixtures import assert_no_violations
from tests.fakes.slack_signing import (
    interaction_body,
    post_signed,
    sign,
    slash_command_body,
)
from tests.fakes.slack_spec import slack_spec_dir

NO_WAIT = FixedValueRetryIntervalCalculator(fixed_internal=0.0)
SECRET = "test-signing-secret"


def client_for(fake: FakeSlackWebAPI, **kwargs: Any) -> WebClient:
    return WebClient(base_url=fake.base_url, token="xoxb-test", timeout=5, **kwargs)


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_valid_post_message_with_blocks_is_recorded_and_answered(
    slack_api: FakeSlackWebAPI,
) -> None:
    blocks = [
        SectionBlock(text="*Acme* renewal — next step due Friday"),
        ActionsBlock(elements=[ButtonElement(text="Mark done", action_id="next_step_done")]),
    ]
    response = client_for(slack_api).chat_postMessage(
        channel="C0TEAM", text="Acme renewal — next step due Friday", blocks=blocks
    )

    assert response["ok"] is True
    assert response["channel"] == "C0TEAM"
    [call] = slack_api.calls_to("chat.postMessage")
    assert call.args["blocks"][1]["elements"][0]["action_id"] == "next_step_done"
    assert call.headers["Authorization"] == "Bearer xoxb-test"
    assert call.response is not None and call.response["ts"] == response["ts"]
    assert slack_api.violations == []


def test_ts_increases_across_messages(slack_api: FakeSlackWebAPI) -> None:
    client = client_for(slack_api)
    first = client.chat_postMessage(channel="C0TEAM", text="one")["ts"]
    second = client.chat_postMessage(channel="C0TEAM", text="two")["ts"]
    assert float(second) > float(first)


def test_form_encoded_blocks_are_decoded(slack_api: FakeSlackWebAPI) -> None:
    blocks = [section("hello")]
    client_for(slack_api).api_call(
        "chat.postMessage",
        params={"channel": "C0TEAM", "text": "hello", "blocks": json.dumps(blocks)},
    )
    [call] = slack_api.calls_to("chat.postMessage")
    assert call.args["blocks"] == blocks
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_missing_required_argument_is_a_violation(slack_api_lenient: FakeSlackWebAPI) -> None:
    with pytest.raises(SlackApiError) as raised:
        client_for(slack_api_lenient).api_call("chat.postMessage", json={"text": "no channel"})

    assert raised.value.response["error"] == "invalid_arguments"
    assert any("'channel'" in problem for problem in slack_api_lenient.violations)
    with pytest.raises(pytest.fail.Exception, match="channel"):
        assert_no_violations(slack_api_lenient)


def test_token_is_required_when_no_authorization_header(
    slack_api_lenient: FakeSlackWebAPI,
) -> None:
    client = WebClient(base_url=slack_api_lenient.base_url, timeout=5)
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C0TEAM", text="anonymous")
    assert slack_api_lenient.violations == ["chat.postMessage: missing required argument 'token'"]


def test_unknown_method_is_rejected(slack_api_lenient: FakeSlackWebAPI) -> None:
    with pytest.raises(SlackApiError) as raised:
        client_for(slack_api_lenient).api_call("chat.postMesage", json={"channel": "C0TEAM"})

    assert raised.value.response["error"] == "unknown_method"
    assert slack_api_lenient.violations


def test_oversize_section_text_is_caught(slack_api_lenient: FakeSlackWebAPI) -> None:
    with pytest.raises(SlackApiError):
        client_for(slack_api_lenient).chat_postMessage(
            channel="C0TEAM", text="long", blocks=[section("x" * 3001)]
        )
    assert any("3001 chars" in problem for problem in slack_api_lenient.violations)


def test_section_text_at_the_limit_passes(slack_api: FakeSlackWebAPI) -> None:
    client_for(slack_api).chat_postMessage(
        channel="C0TEAM", text="long", blocks=[section("x" * 3000)]
    )


def test_blocks_without_text_fallback_are_caught(slack_api_lenient: FakeSlackWebAPI) -> None:
    with pytest.raises(SlackApiError), pytest.warns(UserWarning, match="text"):
        client_for(slack_api_lenient).chat_postMessage(channel="C0TEAM", blocks=[section("hi")])
    assert any("text fallback" in problem for problem in slack_api_lenient.violations)


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        ([{"type": "sectoin", "text": {"type": "mrkdwn", "text": "hi"}}], "unknown block type"),
        ([{**section("a"), "block_id": "b1"}, {**section("b"), "block_id": "b1"}], "duplicate"),
        ([section("hi")] * 51, "51 blocks"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "151 chars"),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "b" * 76},
                            "action_id": "ok",
                        }
                    ],
                }
            ],
            "76 chars",
        ),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "go"},
                            "action_id": "a" * 256,
                        }
                    ],
                }
            ],
            "action_id",
        ),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": str(i)},
                            "action_id": f"a{i}",
                        }
                        for i in range(26)
                    ],
                }
            ],
            "26, Slack allows 25",
        ),
    ],
)
def test_block_kit_limits_are_enforced(
    slack_api_lenient: FakeSlackWebAPI, blocks: list[dict[str, Any]], expected: str
) -> None:
    with pytest.raises(SlackApiError):
        client_for(slack_api_lenient).chat_postMessage(channel="C0TEAM", text="t", blocks=blocks)
    assert any(expected in problem for problem in slack_api_lenient.violations), (
        slack_api_lenient.violations
    )


def modal(**overrides: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Log a deal"},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": [
            {
                "type": "input",
                "block_id": "account",
                "label": {"type": "plain_text", "text": "Account"},
                "element": {"type": "plain_text_input", "action_id": "account"},
            }
        ],
    }
    view.update(overrides)
    return {k: v for k, v in view.items() if v is not None}


def test_valid_modal_opens_with_a_view_id(slack_api: FakeSlackWebAPI) -> None:
    response = client_for(slack_api).views_open(trigger_id="123.456.abc", view=modal())
    assert response["view"]["id"].startswith("V")
    assert slack_api.calls_to("views.open")[0].args["view"]["title"]["text"] == "Log a deal"


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        (modal(title={"type": "plain_text", "text": "A title well over the limit"}), "27 chars"),
        (modal(submit=None), "submit"),
        (modal(title=None), "title"),
        (modal(type="dialog"), "view.type"),
    ],
)
def test_invalid_modals_are_caught(
    slack_api_lenient: FakeSlackWebAPI, view: dict[str, Any], expected: str
) -> None:
    with pytest.raises(SlackApiError):
        client_for(slack_api_lenient).views_open(trigger_id="123.456.abc", view=view)
    assert any(expected in problem for problem in slack_api_lenient.violations)


def test_rate_limit_is_retried_by_rate_limit_handler(slack_api: FakeSlackWebAPI) -> None:
    slack_api.fail_next(status=429, retry_after=0, method="chat.postMessage")
    client = client_for(slack_api, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])

    response = client.chat_postMessage(channel="C0TEAM", text="after a 429")

    assert response["ok"] is True
    attempts = slack_api.calls_to("chat.postMessage", include_failed=True)
    assert [attempt.failed for attempt in attempts] == [True, False]
    assert attempts[0].fault == "status 429"
    assert len(slack_api.calls_to("chat.postMessage")) == 1


def test_rate_limit_without_retry_handler_surfaces_ratelimited(
    slack_api: FakeSlackWebAPI,
) -> None:
    slack_api.fail_next(status=429, retry_after=7)
    with pytest.raises(SlackApiError) as raised:
        client_for(slack_api).chat_postMessage(channel="C0TEAM", text="no retry")
    assert raised.value.response.status_code == 429
    assert raised.value.response["error"] == "ratelimited"
    assert raised.value.response.headers["retry-after"] == "7"


def test_faults_for_one_method_leave_others_alone(slack_api: FakeSlackWebAPI) -> None:
    slack_api.fail_next(status=500, method="views.open")
    client = client_for(slack_api)
    assert client.auth_test()["user_id"] == "UBOT"
    with pytest.raises(SlackApiError):
        client.views_open(trigger_id="1.2.3", view=modal())


def test_server_error_is_retried_by_server_error_handler(slack_api: FakeSlackWebAPI) -> None:
    slack_api.fail_next(2, status=503)
    handler = ServerErrorRetryHandler(max_retry_count=2, interval_calculator=NO_WAIT)
    assert client_for(slack_api, retry_handlers=[handler]).auth_test()["ok"] is True
    assert len(slack_api.calls_to("auth.test", include_failed=True)) == 3


def test_dropped_connection_is_retried_by_connection_error_handler(
    slack_api: FakeSlackWebAPI,
) -> None:
    # Two drops: WebClient's default handler retries only once, so passing needs ours.
    slack_api.drop_next(2, method="chat.postMessage")
    handler = ConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=NO_WAIT)

    response = client_for(slack_api, retry_handlers=[handler]).chat_postMessage(
        channel="C0TEAM", text="after a drop"
    )

    assert response["ok"] is True
    attempts = slack_api.calls_to("chat.postMessage", include_failed=True)
    assert [attempt.fault for attempt in attempts] == ["drop", "drop", None]


def test_dropped_connection_without_handler_raises(slack_api: FakeSlackWebAPI) -> None:
    slack_api.drop_next()
    with pytest.raises(ConnectionError):
        client_for(slack_api, retry_handlers=[]).auth_test()


def test_users_info_reports_configured_admin(slack_api: FakeSlackWebAPI) -> None:
    slack_api.set_user("UADMIN", name="dana", is_admin=True, email="dana@example.com", tz="UTC")
    client = client_for(slack_api)

    admin = client.users_info(user="UADMIN")["user"]
    stranger = client.users_info(user="UREP")["user"]

    assert (admin["id"], admin["name"], admin["is_admin"], admin["tz"]) == (
        "UADMIN",
        "dana",
        True,
        "UTC",
    )
    assert admin["profile"]["email"] == "dana@example.com"
    assert (stranger["id"], stranger["is_admin"], stranger["is_owner"]) == ("UREP", False, False)
    assert client.users_lookupByEmail(email="dana@example.com")["user"]["id"] == "UADMIN"


def test_conversations_open_returns_dm_channel(slack_api: FakeSlackWebAPI) -> None:
    response = client_for(slack_api).conversations_open(users="UREP")
    assert response["channel"]["id"] == "DUREP"


def test_files_upload_v2_round_trip(slack_api: FakeSlackWebAPI) -> None:
    response = client_for(slack_api).files_upload_v2(
        channel="C0TEAM", filename="pipeline.csv", content="account,amount\nAcme,1000\n"
    )

    assert response["ok"] is True
    [upload] = slack_api.uploads.values()
    assert upload.filename == "pipeline.csv"
    assert upload.content == b"account,amount\nAcme,1000\n"
    [complete] = slack_api.calls_to("files.completeUploadExternal")
    assert complete.args["files"][0]["id"] == upload.file_id


def test_bolt_app_authenticates_against_the_fake(slack_api: FakeSlackWebAPI) -> None:
    App(signing_secret=SECRET, client=client_for(slack_api))
    assert [call.method for call in slack_api.calls] == ["auth.test"]


def test_reset_forgets_calls_and_faults(slack_api: FakeSlackWebAPI) -> None:
    client = client_for(slack_api)
    client.auth_test()
    slack_api.fail_next(status=500)
    slack_api.reset()
    assert slack_api.calls == []
    assert client.auth_test()["ok"] is True


def test_signature_is_accepted_by_slack_sdk_verifier() -> None:
    body = slash_command_body(
        "/deal", "Acme 10k", user_id="UREP", response_url="http://127.0.0.1/response/x"
    )
    headers = sign(body, SECRET)
    verifier = SignatureVerifier(SECRET)

    assert verifier.is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    assert not SignatureVerifier("wrong-secret").is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )


def test_stale_signature_is_rejected_by_verifier() -> None:
    body = interaction_body({"type": "block_actions", "actions": []})
    headers = sign(body, SECRET, timestamp=int(time.time()) - 600)
    assert not SignatureVerifier(SECRET).is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )


def test_slash_command_body_is_form_encoded_like_slack() -> None:
    from urllib.parse import parse_qs

    body = slash_command_body(
        "/nextstep", "call Acme friday", user_id="UREP", response_url="http://x/response/1"
    )
    fields = {key: values[0] for key, values in parse_qs(body.decode()).items()}
    assert fields["command"] == "/nextstep"
    assert fields["text"] == "call Acme friday"
    assert fields["channel_id"] == "C0TEAM"
    assert fields["team_id"] == "T1"
    assert fields["trigger_id"]


def test_interaction_body_wraps_json_payload() -> None:
    from urllib.parse import parse_qs

    payload = {"type": "block_actions", "user": {"id": "UREP"}}
    body = interaction_body(payload)
    assert json.loads(parse_qs(body.decode())["payload"][0]) == payload


def test_response_url_records_posted_messages(slack_api: FakeSlackWebAPI) -> None:
    url = slack_api.response_url_for("deal-1")
    response = WebhookClient(url).send(
        text="Deal saved", blocks=[section("*Acme* saved")], response_type="ephemeral"
    )

    assert response.status_code == 200
    [recorded] = slack_api.responses
    assert recorded.name == "deal-1"
    assert recorded.body["text"] == "Deal saved"
    assert recorded.body["blocks"][0]["text"]["text"] == "*Acme* saved"


def test_response_url_checks_block_kit(slack_api_lenient: FakeSlackWebAPI) -> None:
    url = slack_api_lenient.response_url_for("bad")
    response = WebhookClient(url).send(blocks=[section("no fallback")])
    assert response.status_code == 400
    assert any("text fallback" in problem for problem in slack_api_lenient.violations)


def test_post_signed_returns_status_without_raising(slack_api: FakeSlackWebAPI) -> None:
    body = json.dumps({"text": "posted with post_signed"}).encode()
    status, _, answer = post_signed(slack_api.response_url_for("signed"), body, SECRET)
    assert status == 200
    assert json.loads(answer) == {"ok": True}
    assert "X-Slack-Signature" in slack_api.responses[0].headers

    status, _, _ = post_signed(f"{slack_api.origin}/nowhere", b"x=1", SECRET)
    assert status == 404


def test_spec_lookup_knows_required_arguments() -> None:
    spec_dir = slack_spec_dir()
    assert required_arguments("chat.postEphemeral", spec_dir) == {"token", "channel", "user"}
    assert required_arguments("files.completeUploadExternal", spec_dir) == {"token", "files"}
    assert required_arguments("chat.noSuchMethod", spec_dir) is None


def test_spec_dir_can_be_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DEALBOT_SLACK_SPEC_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="DEALBOT_SLACK_SPEC_DIR"):
        slack_spec_dir()


def test_a_spec_folder_without_the_spec_fails_before_serving(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"web_api_openapi_v2\.json"):
        FakeSlackWebAPI(spec_dir=tmp_path)


def test_without_a_spec_every_call_is_answered_as_valid() -> None:
    # The demo's mode: the spec is not installed with dealbot, so nothing is checked.
    with FakeSlackWebAPI() as fake:
        client = client_for(fake)
        # No channel, no user: Slack would refuse both.
        posted = client.api_call("chat.postEphemeral", json={"text": "to nobody"})
        unknown = client.api_call("chat.noSuchMethod")
    assert (posted["ok"], unknown["ok"], fake.violations) == (True, True, [])


def test_the_observer_sees_each_answered_call_before_its_answer() -> None:
    seen: list[RecordedCall] = []
    with FakeSlackWebAPI(spec_dir=slack_spec_dir(), observer=seen.append) as fake:
        fake.fail_next(method="views.publish", status=500)
        client = client_for(fake, retry_handlers=[ServerErrorRetryHandler(max_retry_count=1)])
        client.views_publish(user_id="U0ANA", view={"type": "home", "blocks": []})
        response = client.chat_postMessage(channel="C0TEAM", blocks=[section("hi")], text="hi")
    # The failed first attempt is no answered call; blocks arrive decoded, as JSON.
    assert [call.method for call in seen] == ["views.publish", "chat.postMessage"]
    assert seen[0].args["view"] == {"type": "home", "blocks": []}
    assert seen[1].args["blocks"] == [section("hi")]
    assert seen[1].response is not None and seen[1].response["ts"] == response["ts"]


def test_posting_limits_are_off_by_default(slack_api: FakeSlackWebAPI) -> None:
    client = client_for(slack_api)
    for n in range(8):
        client.chat_postMessage(channel="C0TEAM", text=f"burst {n}")
    assert len(slack_api.calls_to("chat.postMessage")) == 8
    with pytest.raises(RuntimeError):
        slack_api.posting_report()


def test_posting_limits_answer_429_with_retry_after_past_a_channels_burst() -> None:
    limits = PostingLimits(per_channel_per_second=1, channel_burst=2)
    with FakeSlackWebAPI(spec_dir=slack_spec_dir(), posting_limits=limits) as fake:
        client = client_for(fake)
        client.chat_postMessage(channel="C0TEAM", text="one")
        client.chat_postMessage(channel="C0TEAM", text="two")
        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel="C0TEAM", text="three")
        client.chat_postMessage(channel="C0OTHER", text="another channel is not held back")
        with pytest.raises(SlackApiError):  # sent without waiting out the Retry-After
            client.chat_postMessage(channel="C0TEAM", text="too soon")
        report = fake.posting_report()
    assert raised.value.response.status_code == 429
    assert raised.value.response["error"] == "ratelimited"
    assert raised.value.response.headers["retry-after"] == "1"
    assert [c.args["text"] for c in fake.calls_to("chat.postMessage")] == [
        "one",
        "two",
        "another channel is not held back",
    ]
    assert (report.accepted, report.rate_limited, report.early_retries) == (3, 2, 1)


def test_posting_limits_hold_the_whole_workspace_to_its_rate() -> None:
    limits = PostingLimits(workspace_per_minute=60, workspace_burst=3)
    with FakeSlackWebAPI(spec_dir=slack_spec_dir(), posting_limits=limits) as fake:
        client = client_for(fake)
        for n in range(3):
            client.chat_postMessage(channel=f"D0REP{n}", text="within the burst")
        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel="D0REP9", text="over the workspace's rate")
    assert raised.value.response.status_code == 429
    assert fake.posting_report().rate_limited == 1


def test_posting_limits_run_on_slack_time_when_sped_up() -> None:
    # 1 a second per channel, 50 times faster: a resend after the Retry-After (one Slack
    # second) goes through, and Retry-After itself stays in Slack's seconds.
    limits = PostingLimits(per_channel_per_second=1, channel_burst=1, speedup=50)
    with FakeSlackWebAPI(spec_dir=slack_spec_dir(), posting_limits=limits) as fake:
        client = client_for(fake)
        client.chat_postMessage(channel="C0TEAM", text="one")
        with pytest.raises(SlackApiError) as raised:
            client.chat_postMessage(channel="C0TEAM", text="two")
        retry_after = int(raised.value.response.headers["retry-after"])
        time.sleep(retry_after / limits.speedup)
        client.chat_postMessage(channel="C0TEAM", text="two")
        report = fake.posting_report()
    assert retry_after == 1
    assert (report.accepted, report.rate_limited, report.early_retries) == (2, 1, 0)


def test_get_permalink_answers_slacks_shape_for_a_message(slack_api: FakeSlackWebAPI) -> None:
    answer = client_for(slack_api).chat_getPermalink(
        channel="C0TEAM", message_ts="1700000000.123456"
    )
    assert answer["channel"] == "C0TEAM"
    assert answer["permalink"] == (
        "https://dealbot-test.slack.com/archives/C0TEAM/p1700000000123456"
    )
    with pytest.raises(SlackApiError) as raised:
        client_for(slack_api).chat_getPermalink(channel="C0TEAM", message_ts="not-a-ts")
    assert raised.value.response["error"] == "message_not_found"


def test_get_permalink_without_its_message_is_a_violation(
    slack_api_lenient: FakeSlackWebAPI,
) -> None:
    with pytest.raises(SlackApiError):
        client_for(slack_api_lenient).api_call("chat.getPermalink", params={"channel": "C0TEAM"})
    assert slack_api_lenient.violations == [
        "chat.getPermalink: missing required argument 'message_ts'"
    ]
