"""Objections (异议) to records: filed by the citizen, resolved by the provider or a reviewer."""
