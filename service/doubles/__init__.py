"""Local HTTP doubles of the external APIs (SendGrid, Canvas), for tests, the demo and benchmarks."""
