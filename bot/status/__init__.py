"""The status model's pure parts: component resolution, command parsing and message rendering."""
