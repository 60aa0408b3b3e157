"""The glue that turns a composed config into a run: checks, building, logging, results."""
