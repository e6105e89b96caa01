"""The live routing table (apps, models, versions, replicas) and where it comes from."""
