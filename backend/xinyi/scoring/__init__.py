"""Credit scoring (信用评分): pure rules, the default catalogue and default benefit rules."""
