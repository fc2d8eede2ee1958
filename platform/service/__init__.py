"""The role service: business layer (chat orchestration) and its FastAPI edge."""
