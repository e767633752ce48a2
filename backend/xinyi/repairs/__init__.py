"""Credit repair (信用修复): applications, eligibility, review within working days, decisions."""
