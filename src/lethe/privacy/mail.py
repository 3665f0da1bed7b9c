"""The channels that carry a message to a requester (:mod:`lethe.privacy.communications`).

``LETHE_MAIL_CHANNEL=none`` (the default) has no channel: every message is recorded as a draft for
the data-protection officer to send by hand. ``smtp`` sends through :class:`SmtpChannel` (host,
port, sender, optional STARTTLS and login from the settings; the password is never logged nor put
in an error). Another channel is any object with :class:`MailChannel`'s ``name`` and ``send``.

A channel raises :class:`~lethe.errors.DeliveryError` when a message could not be sent; the error
names what failed (the exception's class, the SMTP code) and never the recipient's address, which
some server replies quote.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

from lethe.config import Settings
from lethe.errors import DeliveryError

__all__ = ["MailChannel", "SmtpChannel", "channel_from", "is_email"]

_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


def is_email(address: str) -> bool:
    """Whether ``address`` is one plain e-mail address (not a postal address, not a list, no header
    folding): only such an address is given to a channel."""
    return bool(_EMAIL.fullmatch(address.strip()))


class MailChannel(Protocol):
    """What carries a message: ``name`` is recorded with each message sent through it."""

    name: str

    def send(self, *, to: str, subject: str, body: str, language: str) -> None:
        """Deliver one plain-text message or raise :class:`DeliveryError`."""
        ...


class SmtpChannel:
    """One SMTP connection per message (messages are few): STARTTLS first when asked, then a login
    when a user is set."""

    name = "smtp"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = True,
        user: str | None = None,
        password: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.starttls, self.user, self._password, self.timeout_s = starttls, user, password, timeout_s
        self._domain = sender.rpartition("@")[2] or "localhost"

    def __repr__(self) -> str:  # never the password
        login = self.user is not None
        return f"SmtpChannel({self.host!r}, {self.port}, starttls={self.starttls}, login={login})"

    def send(self, *, to: str, subject: str, body: str, language: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self._domain)
        message["Content-Language"] = language
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(body)
        try:
            # local_hostname: no lookup of this machine's name (EHLO), which may go to the network
            with smtplib.SMTP(
                self.host, self.port, timeout=self.timeout_s, local_hostname=self._domain
            ) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self._password or "")
                smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"{type(exc).__name__} (SMTP {exc.smtp_code})") from None
        except (smtplib.SMTPException, OSError) as exc:
            # never the exception's text: a refused recipient's reply quotes the address
            raise DeliveryError(type(exc).__name__) from None


def channel_from(settings: Settings) -> MailChannel | None:
    """The channel ``LETHE_MAIL_CHANNEL`` names; ``None`` for ``none`` (drafts only)."""
    if settings.mail_channel != "smtp" or not settings.smtp_host or not settings.smtp_from:
        return None
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpChannel(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_from,
        starttls=settings.smtp_starttls,
        user=settings.smtp_user,
        password=password,
        timeout_s=settings.smtp_timeout_s,
    )
