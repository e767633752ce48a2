"""Authorised query (授权查询, R3): partners read a citizen's report only with live consent."""
