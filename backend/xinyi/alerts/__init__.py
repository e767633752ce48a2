"""Alerts to the credit office's staff: overdue cases, deadlines recomputed."""
