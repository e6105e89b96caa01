"""The REST APIs (OIP V2, Clipper's predict/feedback, /metrics) on aiohttp."""
