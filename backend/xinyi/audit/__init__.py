"""Access log (查询使用登记): who read a citizen's data, a transparency log (per-citizen hash
chains and one Merkle tree with signed heads)."""
