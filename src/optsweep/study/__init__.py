"""A study: the optimizer -> LR -> schedule -> seeds protocol as one command, each stage a
sweep whose grid follows from the previous stage's ranking (conf/study/<name>.yaml)."""
