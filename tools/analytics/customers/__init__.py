"""Customer analytics: churn, lead scoring, lifetime value, segmentation, and the classifier and saved runs they share."""
