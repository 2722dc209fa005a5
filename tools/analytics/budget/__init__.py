"""How the budget should move: spend history from SQL, response curves (adstock, saturation), the optimiser, the tool."""
