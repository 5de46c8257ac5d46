"""Local replica of CivitAI (REST API, CDN, tRPC tags, image page). Work in progress."""
