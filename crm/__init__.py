"""CRM sync: dealbot as the Slack face of a team's Salesforce or HubSpot.

`records` holds the plain values both connectors speak, `connector` the protocol they
implement, `sync` the engine that pulls, maps, resolves conflicts and pushes through the
CRM outbox. `crm` may import `domain` and `storage`, never `handlers`, `reminders` or `bot`.
"""
