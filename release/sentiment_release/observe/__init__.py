"""The model after release: its audit log read back, the drift report, and feedback
turned into training data (the service writes them: sentiment/serving/recorder.py, /v1/feedback)."""
