"""The tuning loop: start the service, replay traffic, profile, measure memory, judge, sweep settings."""
