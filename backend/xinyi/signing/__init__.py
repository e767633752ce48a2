"""Ed25519 signing keys for QR credentials and the access log's tree heads, shared by both."""
