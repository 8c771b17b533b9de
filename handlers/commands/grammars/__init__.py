"""One grammar per slash command: its forms (help and usage), what it parses to, its parser."""
