"""Built-in datasets: the simulated cohort."""
