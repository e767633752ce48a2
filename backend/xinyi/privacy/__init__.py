"""The citizen's rights over their personal data: closing the account (crypto-shredding),
the shred list a restore replays, and the backfill of personal keys."""
