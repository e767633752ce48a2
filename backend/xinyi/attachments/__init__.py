"""Files a citizen uploads as evidence for a repair or an objection."""
