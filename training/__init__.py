"""What train.py drives: where a run starts (data, the checkpoint it resumes, its counters) and the
loop over epochs and steps with what happens between steps."""
