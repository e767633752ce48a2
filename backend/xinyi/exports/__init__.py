"""The citizen's export of everything held about them (PIPL right of access and portability)."""
