"""The report on a sweep: read its runs (local directories or W&B's API) into plain records,
rank settings, and write Markdown + HTML with PNG plots."""
