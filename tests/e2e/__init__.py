"""End-to-end runs over the sandboxes, crash and concurrency harness runs, demo, bench smoke, README."""
