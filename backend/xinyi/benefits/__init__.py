"""Deposit-free benefit sessions (信用免押): open, close, default after notice and grace."""
