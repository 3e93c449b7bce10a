"""What nmt may change in the whole process: threads, the allocator, signal handlers."""
