"""CRM sync: dealbot as the Slack face of a team's Salesforce or HubSpot.

`records` holds the plain values both connectors speak, `connector` the protocol they
implement, `sync` the engine that pulls, maps, resolves conflicts and pushes through the
CRM outbox: its façade `CrmSync` runs `push` (the outbox to the CRM) and `pull` (the CRM's
changes applied here), says what it decided through `notices`, and both sides share `_values`.
`crm` may import `domain` and `storage`, never `handlers`, `reminders` or `bot`.
"""
