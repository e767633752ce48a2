"""Ed25519 signing keys for QR credentials and audit checkpoints, shared by both domains."""
