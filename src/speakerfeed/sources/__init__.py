"""Article sources: files in articles/ (one reader per format) and upstream feeds."""
