"""Platform emulators (Slack, Discord) on 127.0.0.1 that the real client libraries run against."""
