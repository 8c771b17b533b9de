"""Scheduled jobs, the scheduler, the accuracy checks and message delivery."""
