"""The web app: feeds and pages for readers and subscribers."""
