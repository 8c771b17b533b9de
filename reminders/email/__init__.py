"""Follow-up email drafts: templates, the trigger rules, the backends (outbox, Gmail) and OAuth.

Nothing here talks to Slack: whoever runs a draft passes in how to reach the rep.
"""
