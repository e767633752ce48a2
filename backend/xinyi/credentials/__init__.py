"""QR credentials (DESIGN.md §5): short-lived Ed25519-signed tokens a citizen shows a partner.

``tokens`` holds the pure signing/verification logic and ``qr`` renders a payload as PNG or SVG.
Neither module touches Flask, the database or Redis.
"""
