"""What the optimum is measured against: the earlier published traffic models (`baselines`), their
predictions and the schedules they choose, under the exact model.
"""
