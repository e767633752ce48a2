"""Signed credit commitments (信用承诺) a citizen gives, e.g. when applying for a repair."""
