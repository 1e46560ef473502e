"""The status domain: its vocabulary (model), its read model (snapshot), the rules of incidents and
maintenance (workflows), component names (components), command arguments (parse), what answers and
notices say (messages), the public page and Statuspage API (page), and the broadcast outbox worker."""
