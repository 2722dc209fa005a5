"""Did the test win, and how big must the next one be: the statistics, the readout, the plan."""
