"""Statistics for the credit office (R13): counts each domain computes set-based, cached for
five minutes, never naming a person; and the districts' resident populations staff set."""
