"""The citizen's inbox (消息): notices from benefit sessions, repairs, objections and rights."""
