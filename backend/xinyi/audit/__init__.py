"""Access log (查询使用登记): who read a citizen's data, hash-chained and checkpoint-signed."""
