"""What every service needs exactly once: events, plumbing, clock, money, settings, logging."""
