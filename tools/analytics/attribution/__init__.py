"""Which channels really drive conversions: journeys from SQL, rule-based / Markov / Shapley credit, the tool."""
