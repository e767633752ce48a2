"""Explanations of automated decisions and their human review (自动化决策说明与人工复核)."""
