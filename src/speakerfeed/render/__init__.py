"""Rendering: feeds and pages to bytes. Nothing here touches the disk."""
