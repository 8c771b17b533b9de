"""The RFC 2822 message a follow-up draft is made of, and its deterministic Message-ID."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime


@dataclass(frozen=True)
class Party:
    name: str | None
    email: str

    def address(self) -> Address:
        """Return the header address; raise ValueError unless `email` is one plain address.

        Parsing the whole address (not splitting it at "@") refuses a value such as
        `a@b.example>, c@d.example` that would otherwise add a recipient.
        """
        return Address(display_name=self.name or "", addr_spec=self.email)


@dataclass(frozen=True)
class DraftMessage:
    """Everything a backend needs to put one draft in a mailbox."""

    sender: Party
    to: Party
    subject: str
    body: str
    message_id: str  # with angle brackets: <…@…>
    date: dt.datetime
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    thread_id: str | None = None  # Gmail's id of the thread to add the draft to, when known

    def to_mime(self) -> EmailMessage:
        """Return the message as MIME: plain text, UTF-8, threading headers when replying."""
        message = EmailMessage(policy=SMTP)
        message["From"] = self.sender.address()
        message["To"] = self.to.address()
        message["Subject"] = self.subject
        message["Date"] = format_datetime(self.date)
        message["Message-ID"] = self.message_id
        if self.in_reply_to:
            message["In-Reply-To"] = self.in_reply_to
            message["References"] = " ".join(self.references or (self.in_reply_to,))
        message.set_content(self.body)
        return message

    def to_bytes(self) -> bytes:
        return self.to_mime().as_bytes()

    def to_raw(self) -> str:
        """Return the message as Gmail's `raw` field wants it: base64url of the bytes."""
        return base64.urlsafe_b64encode(self.to_bytes()).decode("ascii")


def message_id_for(trigger_key: str, *, mailbox: str) -> str:
    """Return the Message-ID of the draft for a trigger: the same every time it is asked.

    A retry after a crash (Google accepted the draft, we never heard) can then look the
    draft up by this id instead of making a second one.
    """
    digest = hashlib.sha256(f"{trigger_key}|{mailbox.casefold()}".encode()).hexdigest()[:32]
    domain = mailbox.rpartition("@")[2] or "dealbot.invalid"
    return f"<dealbot.{digest}@{domain}>"
