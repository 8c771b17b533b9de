"""Jinja2 templates: email/ holds follow-up drafts (subject and body), editable without code."""
