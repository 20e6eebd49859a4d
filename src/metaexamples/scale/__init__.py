"""Scale-out machinery: GPU leases, multi-process launch, cluster checks, runtime settings."""
