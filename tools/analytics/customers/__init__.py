"""Customer analytics: churn, lead scoring, lifetime value and segmentation, with the classifier, the feature
matrix of a user's table and the saved runs they share."""
