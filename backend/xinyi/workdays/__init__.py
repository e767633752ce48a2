"""Working days by the official PRC calendar (法定工作日), for every deadline counted in them."""
