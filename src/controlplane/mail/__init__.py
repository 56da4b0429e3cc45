"""E-mail: an outbox written in the transaction that causes a mail, and a sender."""
