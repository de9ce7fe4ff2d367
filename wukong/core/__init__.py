"""wukong's engine: graph input, static partitioning, cooperative executors, jobs and the client."""
