"""Reports of dishonest behaviour (有奖举报) with the reporter's protection."""
