"""Credit records (信用记录), the catalogue (信用信息目录) and red/black list entries."""
