"""The Slack rendering of the scheduled jobs' messages, handed to each job run by `bot`."""

from __future__ import annotations

from handlers import calibration_blocks, follow_up_blocks, reminder_blocks


class SlackJobMessages:
    """Block Kit for what the jobs send (reminders.jobs.JobMessages), built by handlers."""

    chase_message = staticmethod(reminder_blocks.chase_message)
    post_mortem_prompt = staticmethod(reminder_blocks.post_mortem_prompt)
    accuracy_post = staticmethod(reminder_blocks.accuracy_post)
    manager_digest = staticmethod(reminder_blocks.manager_digest)
    draft_ready = staticmethod(follow_up_blocks.draft_ready)
    draft_skipped = staticmethod(follow_up_blocks.draft_skipped)
    connect_gmail = staticmethod(follow_up_blocks.connect_gmail)
    template_broken = staticmethod(follow_up_blocks.template_broken)
    rep_calibration = staticmethod(calibration_blocks.rep_calibration)
