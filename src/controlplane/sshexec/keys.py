"""SSH key helpers: a fresh ed25519 pair, and fingerprints for messages."""

from __future__ import annotations

from typing import NamedTuple


class KeyPair(NamedTuple):
    private_pem: str  # OpenSSH PEM ("-----BEGIN OPENSSH PRIVATE KEY-----"), unencrypted
    public_openssh: str  # "ssh-ed25519 AAAA... comment"


def generate_keypair(comment: str = "controlplane") -> KeyPair:
    """A new ed25519 key pair, e.g. for the control plane's login to Proxmox nodes."""
    import asyncssh  # on the first SSH use, not at start-up (pinned.py)

    key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
    return KeyPair(
        private_pem=key.export_private_key("openssh").decode("ascii"),
        public_openssh=key.export_public_key("openssh").decode("ascii").strip(),
    )


def fingerprint(public_openssh: str) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
    import asyncssh  # on first use (pinned.py)

    return asyncssh.import_public_key(public_openssh).get_fingerprint("sha256")
