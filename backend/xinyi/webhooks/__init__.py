"""Webhook delivery: partners' endpoints, their per-partner event feed, deliveries and attempts."""
